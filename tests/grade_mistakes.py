"""Deliberately wrong versions of the exercises' solutions, one per hint the grader can give.

Each entry: (exercise, function, hint id, [(text in the solution, what replaces it), ...]).
The test applies the replacements to the teacher's file, grades the result and
expects that function's row to FAIL with that hint.
"""

MISTAKES = [
    # -- any array (minirnn/grading/core.py) ---------------------------------------------------------------
    (
        "01_dense_and_loss",
        "dense_backward",
        "double",
        [("return dy @ W.T, x.T @ dy, dy.sum(axis=0)", "return dy @ W.T, 2 * x.T @ dy, dy.sum(axis=0)")],
    ),
    (
        "01_dense_and_loss",
        "dense_backward",
        "half",
        [("return dy @ W.T, x.T @ dy, dy.sum(axis=0)", "return dy @ W.T, x.T @ dy / 2, dy.sum(axis=0)")],
    ),
    (
        "01_dense_and_loss",
        "dense_backward",
        "sign",
        [("return dy @ W.T, x.T @ dy, dy.sum(axis=0)", "return -dy @ W.T, x.T @ dy, dy.sum(axis=0)")],
    ),
    (
        "01_dense_and_loss",
        "dense_backward",
        "transposed",
        [("return dy @ W.T, x.T @ dy, dy.sum(axis=0)", "return dy @ W.T, dy.T @ x, dy.sum(axis=0)")],
    ),
    (
        "02_rnn_step",
        "rnn_step_backward",
        "transposed",  # dWh is square: the transpose shows in the values
        [("h_prev.T @ da,", "da.T @ h_prev,")],
    ),
    (
        "01_dense_and_loss",
        "dense_forward",
        "float64",
        [("y = x @ W + b  # (M, V)", "y = np.zeros((x.shape[0], W.shape[1])) + x @ W + b")],
    ),
    (
        "02_rnn_step",
        "rnn_step_backward",
        "own_forward",
        [
            ("h = np.tanh(x @ Wx + h_prev @ Wh + b)", "h = np.tanh(x @ Wx + h_prev @ Wh + 2 * b)"),
            ("h_prev.T @ da, da.sum(axis=0)", "h_prev.T @ da, 2 * da.sum(axis=0)"),
        ],
    ),
    # -- exercise 1 ----------------------------------------------------------------------------------------
    ("01_dense_and_loss", "softmax_cross_entropy", "count_NT", [("count = max(w.sum(), 1)", "count = M")]),
    (
        "01_dense_and_loss",
        "softmax_cross_entropy",
        "mask_ignored",
        [
            (
                "w = np.ones(M, dtype=logits.dtype) if mask is None else mask",
                "w = np.ones(M, dtype=logits.dtype)",
            )
        ],
    ),
    (
        "01_dense_and_loss",
        "softmax_cross_entropy",
        "not_divided",
        [("dlogits *= w[:, None] / count", "dlogits *= w[:, None]")],
    ),
    (
        "01_dense_and_loss",
        "softmax_cross_entropy",
        "overflow",
        [("z = logits - logits.max(axis=1, keepdims=True)", "z = logits")],
    ),
    # -- exercise 2 ----------------------------------------------------------------------------------------
    (
        "02_rnn_step",
        "rnn_step_forward",
        "no_tanh",
        [("h = np.tanh(x @ Wx + h_prev @ Wh + b)", "h = x @ Wx + h_prev @ Wh + b")],
    ),
    ("02_rnn_step", "rnn_step_backward", "tanh_slope_h", [("da = dh * (1 - h * h)", "da = dh * (1 - h)")]),
    (
        "02_rnn_step",
        "rnn_step_backward",
        "tanh_slope_a",
        [("da = dh * (1 - h * h)", "da = dh * (1 - np.arctanh(h) ** 2)")],
    ),
    ("02_rnn_step", "rnn_step_backward", "no_tanh_slope", [("da = dh * (1 - h * h)", "da = dh * 1.0")]),
    # -- exercise 3 ----------------------------------------------------------------------------------------
    ("03_bptt", "rnn_forward", "output_not_zeroed", [("hs[t] = m * h_new", "hs[t] = h_new")]),
    ("03_bptt", "rnn_forward", "state_not_held", [("h = m * h_new + (1 - m) * h", "h = h_new")]),
    (
        "03_bptt",
        "rnn_backward",
        "mask_leak",  # the backward walk written as if every position were real
        [("        m = m_all[t][:, None]\n        dx[t]", "        m = 1.0\n        dx[t]")],
    ),
    (
        "03_bptt",
        "rnn_backward",
        "carry_dropped",
        [("        dh = dh_prev + (1 - m) * dh\n", "        dh = dh_prev\n")],
    ),
    (
        "03_bptt",
        "rnn_backward",
        "dh_T_ignored",
        [("dx, dh = [None] * len(caches), dh_T", "dx, dh = [None] * len(caches), np.zeros_like(dh_T)")],
    ),
    # -- exercise 4 ----------------------------------------------------------------------------------------
    (
        "04_lstm_step",
        "lstm_step_forward",
        "gate_order",
        [
            (
                "sigmoid(a[:, 2 * H : 3 * H])\n    g = np.tanh(a[:, 3 * H :])",
                "sigmoid(a[:, 3 * H :])\n    g = np.tanh(a[:, 2 * H : 3 * H])",
            )
        ],
    ),
    ("04_lstm_step", "lstm_step_forward", "h_without_tanh", [("h = o * tc", "h = o * c")]),
    (
        "04_lstm_step",
        "lstm_step_backward",
        "tanh_c_slope",
        [("dct = dc + dh * o * (1 - tc * tc)", "dct = dc + dh * o * (1 - np.arctanh(tc) ** 2)")],
    ),
    (
        "04_lstm_step",
        "lstm_step_backward",
        "dc_missing_h",
        [("dct = dc + dh * o * (1 - tc * tc)", "dct = dc + 0 * dh")],
    ),
    ("04_lstm_step", "lstm_step_backward", "dc_prev_no_f", [("da @ Wh.T, dct * f,", "da @ Wh.T, dct,")]),
    # -- exercise 5 ----------------------------------------------------------------------------------------
    (
        "05_gru_step",
        "gru_step_forward",
        "reset_before",
        [
            (
                "n = np.tanh(ax[:, 2 * H :] + r * hn)",
                "n = np.tanh(ax[:, 2 * H :] + (r * h_prev) @ Wh[:, 2 * H :] + bhn)",
            )
        ],
    ),
    (
        "05_gru_step",
        "gru_step_forward",
        "bhn_outside",
        [("n = np.tanh(ax[:, 2 * H :] + r * hn)", "n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :] + bhn)")],
    ),
    (
        "05_gru_step",
        "gru_step_forward",
        "z_swapped",
        [("h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev")],
    ),
    (
        "05_gru_step",
        "gru_step_backward",
        "forward_only",  # the same wrong forward, under a right backward
        [("h = (1 - z) * n + z * h_prev", "h = z * n + (1 - z) * h_prev")],
    ),
    ("05_gru_step", "gru_step_backward", "no_direct_path", [("dh * z + dah @ Wh.T", "dah @ Wh.T")]),
    ("05_gru_step", "gru_step_backward", "dbhn_without_r", [("(dan * r).sum(axis=0),", "dan.sum(axis=0),")]),
    # -- exercise 6 ----------------------------------------------------------------------------------------
    (
        "06_adam_and_clipping",
        "clip_by_global_norm",
        "clamp",
        [
            (
                "    for g in grads.values():\n        g *= scale",
                "    for g in grads.values():\n        np.clip(g, -max_norm, max_norm, out=g)",
            )
        ],
    ),
    (
        "06_adam_and_clipping",
        "clip_by_global_norm",
        "per_array",
        [
            (
                "    for g in grads.values():\n        g *= scale",
                "    for g in grads.values():\n        g *= max_norm / max(np.sqrt((g * g).sum()), max_norm)",
            )
        ],
    ),
    (
        "06_adam_and_clipping",
        "clip_by_global_norm",
        "norm_after",
        [("    return norm\n", "    return min(norm, max_norm)\n")],
    ),
    (
        "06_adam_and_clipping",
        "clip_by_global_norm",
        "scaled_up",
        [("scale = max_norm / max(norm, max_norm)", "scale = max_norm / norm")],
    ),
    (
        "06_adam_and_clipping",
        "clip_by_global_norm",
        "not_in_place",
        [("        g *= scale", "        g = g * scale")],
    ),
    ("06_adam_and_clipping", "adam_update", "p_not_in_place", [("    p -= lr", "    p = p - lr")]),
    (
        "06_adam_and_clipping",
        "adam_update",
        "no_bias_correction",
        [("p -= lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m", "p -= lr * m")],
    ),
    (
        "06_adam_and_clipping",
        "adam_update",
        "paper_eps",
        [
            (
                "p -= lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)",
                "p -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)",
            )
        ],
    ),
    (
        "06_adam_and_clipping",
        "adam_update",
        "state_not_kept",
        [
            (
                "    m *= beta1\n    m += (1 - beta1) * g\n    v *= beta2\n    v += (1 - beta2) * g * g",
                "    m = beta1 * m + (1 - beta1) * g\n    v = beta2 * v + (1 - beta2) * g * g",
            )
        ],
    ),
    # -- exercise 7 ----------------------------------------------------------------------------------------
    (
        "07_training_step",
        "train_step",
        "no_clip",
        [
            (
                "    norm = optim.clip_by_global_norm(grads, max_norm)\n",
                "    norm = np.sqrt(sum((g * g).sum() for g in grads.values()))\n",
            )
        ],
    ),
    (
        "07_training_step",
        "train_step",
        "norm_after",
        [("return loss, float(norm)", "return loss, min(float(norm), max_norm)")],
    ),
]
