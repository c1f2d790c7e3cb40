"""The numbers the compiled code and the programs that drive it agree on.

Nothing here imports numba: the planner (``engine.plan``, ``engine.program``) builds its
integer tables with these names whether or not the compiled loops ever run.
"""

__all__ = ["ACT", "CELL", "DENSE", "SCALED_IDENTITY", "GRU_RECURRENT", "BUFFERS", "ACTS", "PREACTS", "WEIGHTS",
           "D_ACTS", "D_PREACTS", "GRADS", "OUTPUTS", "FUSED", "GEMM", "ACTIVATE", "ACTIVATE_BACK", "LOOP", "LOOP_BACK", "SUM_ROWS",
           "ZERO", "REPEAT", "SWAP", "SUM_HISTORY", "SUM_SQUARES", "OP_WIDTH"]

# Activations by code (the compiled ``_activate`` / ``_activate_back`` switch on these).
ACT = {"identity": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "softmax": 4}
# A gated layer's cell in the same column of the loops' member table (``engine.cells``): its
# step replaces the activation.
CELL = {"lstm": 5, "gru": 6}

# How a link inside a recurrence is applied: a dense matrix product, or ``s * I`` (an
# Elman copy, a Jordan decay) as a scaled add, or a GRU's own recurrence ``h -> h @1``,
# whose (3H, H) product goes to the [r, z] and n_h blocks of its z ([r, z, n_x, n_h]).
DENSE, SCALED_IDENTITY, GRU_RECURRENT = 0, 1, 2

# The flat buffers of a pass, by their place in the tuple a program runs on:
# ACTS (every node's (D + T, N, size) activations, history first), PREACTS (every layer's
# (T, N, H) z), WEIGHTS (weights, their transposes, biases, learned initial states),
# D_ACTS and D_PREACTS (their gradients), GRADS (the parameters' gradients), OUTPUTS
# (y (N, T, n_out) in forward, dDIV/dy in BPTT), FUSED (the output layer's fused dz).
BUFFERS = ("ACTS", "PREACTS", "WEIGHTS", "D_ACTS", "D_PREACTS", "GRADS", "OUTPUTS", "FUSED")
ACTS, PREACTS, WEIGHTS, D_ACTS, D_PREACTS, GRADS, OUTPUTS, FUSED = range(8)

# A program's opcodes (column 0 of a row; the operands of each are in ``compiled.run_program``).
GEMM, ACTIVATE, ACTIVATE_BACK, LOOP, LOOP_BACK, SUM_ROWS, ZERO, REPEAT, SWAP, SUM_HISTORY, SUM_SQUARES = range(11)
OP_WIDTH = 16        # int64 columns of a row
