"""py-spinnaker2 ``brian2_sim`` stand-in: the same simulation as :mod:`spinnaker2.hardware`."""

from spinnaker2.hardware import simulate


class Brian2Backend:
    """Stand-in for the Brian2 software backend."""

    def run(self, net, timesteps, sys_tick_in_s=1e-3, **kwargs):
        simulate(net, int(timesteps))
