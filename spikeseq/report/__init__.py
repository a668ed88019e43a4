"""spikeseq.report (see ARCHITECTURE.md)."""
