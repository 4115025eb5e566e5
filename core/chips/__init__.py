"""Export Training Tiles: label sources, chip export and the chip folder format (ours and ArcGIS's)."""
