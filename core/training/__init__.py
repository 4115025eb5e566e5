"""Train Model: options, chip datasets and spatial splits, losses, the trainer, checkpoints, ONNX export, report.

``config`` (TrainConfig, its choices), ``folders`` (chip folders as one training set), ``data``
(datasets, loaders), ``split`` (spatial blocks), ``losses``, ``steps`` (epoch, evaluation, LR range test,
schedules), ``checkpoint`` (also resuming and ``TrainConfig.finetune``: starting from an earlier model),
``trainer`` (:func:`~core.training.trainer.train_model`), ``finish`` (threshold, training record, checked
export), ``report`` (log, report, output folder), ``onnx_export``, ``distributed`` and ``cli``
(``python -m deeplandcover.core.training``). Pre-trained weights: ``weights_catalog``, ``pretrained``
(band matching, loading), ``encoder_schedule`` (the frozen-then-unfrozen schedule of a pre-trained
encoder; ``presto`` and ``dynamicworld_encoder`` its variants). The only torch user in core (besides the
networks in ``models/``); ``config`` and this package's top (names imported on first use) import no torch.

Methods and where they come from:

- U-Net, U-Net+ConvLSTM, the CE + log-Jaccard loss and dihedral augmentation: Kamdem De Teyou, G.,
  Tarabalka, Y., Manighetti, I., Almar, R., & Tripodi, S. (2020). Deep Neural Networks for Automatic
  Extraction of Features in Time Series Optical Satellite Images. Int. Arch. Photogramm. Remote Sens.
  Spatial Inf. Sci., XLIII-B2-2020, 1529-1535. https://doi.org/10.5194/isprs-archives-XLIII-B2-2020-1529-2020
- the nodata-masked loss (incomplete chips kept), random date sequences: Sefrin, O., Riese, F. M., &
  Keller, S. (2021). Deep Learning for Land Cover Change Detection. Remote Sensing, 13(1), 78.
  https://doi.org/10.3390/rs13010078
- weighted cross-entropy and the two-branch loss: Cherif, E., Hell, M., & Brandmeier, M. (2022).
  DeepForest: Novel Deep Learning Models for Land Use and Land Cover Classification Using Multi-Temporal
  and -Modal Sentinel Data of the Amazon Basin. Remote Sensing, 14(19), 5000. https://doi.org/10.3390/rs14195000
- spectral indices as inputs: Yi, Z.-F., Bollinger, D., & Peressutti, D. (2020), "Mapping land use and
  land cover changes faster and at scale with deep learning on the cloud", Development Seed / Sinergise.
- the LR range test (Smith, WACV 2017), median frequency balancing (Eigen & Fergus, ICCV 2015), the
  focal loss (Lin et al., ICCV 2017), cosine annealing with warm-up (Loshchilov & Hutter, ICLR 2017).
"""

from ..lazy import lazy_exports

#: the stage's entry point and options, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "train_model": ".trainer",
    "TrainConfig": ".config",
    "TrainResult": ".config",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
