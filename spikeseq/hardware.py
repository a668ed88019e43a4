"""Hardware tables (`hardware/*.toml`), read through :mod:`spikeseq.hardware`."""
