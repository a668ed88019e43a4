"""spikeseq.export (see ARCHITECTURE.md)."""
