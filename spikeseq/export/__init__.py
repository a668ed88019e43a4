"""spikeseq.export: writers for neuromorphic toolchains; they see only the IR (:mod:`spikeseq.graph.ir`) and the
target limits (:mod:`spikeseq.graph.targets`, ``hardware/*.toml``), never torch modules.

- :mod:`spikeseq.export.nir`: ``to_nir`` / ``write_nir`` / ``from_nir`` / ``read_nir`` (NIR 1.0, snnTorch/Norse
  conventions, dt and reset in metadata, explicit recurrent edges).
- :mod:`spikeseq.export.loihi`: ``write_net`` (lava-dl netx ``.net`` HDF5), ``read_net``, ``map_cores``,
  ``write_loihi`` (netx for chains, else the Lava process description; ``format`` says which).
- :mod:`spikeseq.export.lava`: ``write_lava`` (Lava process-network JSON + build script for branching / feedback
  graphs with cross-population feedback), ``process_network``, ``read_lava``, ``graph_from_description``.
- :mod:`spikeseq.export.spinnaker2`: ``write_spinnaker2`` (py-spinnaker2 JSON + build script),
  ``network_description``, ``map_pes``.
- :mod:`spikeseq.export.mapping`: the core/PE placement report shared by both hardware targets.

Every writer is atomic (temporary file + rename): on any error nothing is left at the destination.
"""
