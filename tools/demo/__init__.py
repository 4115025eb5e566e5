"""The demo (``make demo``: :mod:`.run`) and its Deepness check (:mod:`.deepness_check`)."""
