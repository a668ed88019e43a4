"""Fast LIF-family scan backends (registered with :mod:`spikeseq.kernels.dispatch` on import)."""
