"""spikeseq.data: datasets from their real file formats, event binning, HDF5 cache (see ARCHITECTURE.md).

Modules (imported on use): ``paths`` (data root), ``manifest`` (``datasets/*.toml``), ``nmnist``, ``shd``
(SHD/SSC HDF5 reader and writer), ``temporal_task`` (SHD-format timing-only task generator), ``har`` (HAPT,
UCI HAR, WISDM, BasicMotions windows, normalisation, collation), ``events`` (binning, padding), ``cache``,
``download``, ``tonic_interop``, ``registry`` (``names()``, ``load(name, split)``), ``cli`` (``spikeseq data``).
"""
