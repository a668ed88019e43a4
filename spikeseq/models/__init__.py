"""spikeseq.models (see ARCHITECTURE.md)."""
