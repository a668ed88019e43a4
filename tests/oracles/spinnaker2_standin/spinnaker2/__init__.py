"""A stand-in for py-spinnaker2 (gitlab.com/spinnaker2/py-spinnaker2, not installable here) with the API surface the
generated SpiNNaker2 scripts use: ``snn.Population`` / ``snn.Projection`` / ``snn.Network``,
``hardware.SpiNNaker2Chip(...).run(net, steps, sys_tick_in_s=...)``, ``brian2_sim.Brian2Backend``, and the recorded
``Population.get_spikes()`` / ``get_voltages()``. It simulates with the semantics documented in
``shared/specs/targets.md`` §3.2-3.4 and §4.4 (float32 state):

- ``spike_list``: neuron i emits at the ticks listed in ``params[i]``;
- a spike emitted at tick t reaches its target at tick ``t + 1 + delay`` (``*_no_delay`` models: delay 0, next
  tick; ``lif``: hardware delay = delay + 1);
- ``lif`` / ``lif_no_delay``: ``v = alpha_decay * v + i_offset + sum_j w_ij s_j``;
- ``lif_curr_exp*``: ``I_exc = exc_decay * I_exc + sum w+ s``, ``I_inh = inh_decay * I_inh + sum |w-| s``,
  ``v = alpha_decay * v + i_offset + I_exc - I_inh``;
- spike iff ``v > threshold``; then ``v -= threshold`` (``reset_by_subtraction``) or ``v = v_reset``;
  ``get_voltages`` reports v after the reset, per tick.

It is not the chip: where targets.md marks the semantics unverified (operation order, ``>`` vs ``>=``, float vs
fixed point), the stand-in implements the documented reading, no more.
"""
