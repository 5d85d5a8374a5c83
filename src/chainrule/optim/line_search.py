r"""Line search along a direction d satisfying the strong Wolfe conditions; shared by L-BFGS and
nonlinear conjugate gradient.

With :math:`\phi(t) = f(x + t d)` and :math:`\phi'(t) = \nabla f(x + t d)^\top d`, a step t is
accepted when

.. math::
    \phi(t) \le \phi(0) + c_1\, t\, \phi'(0) \quad\text{(sufficient decrease)}, \qquad
    |\phi'(t)| \le c_2\, |\phi'(0)| \quad\text{(curvature)}.

The search (Nocedal & Wright, algorithms 3.5 and 3.6, as done in minFunc and PyTorch) first grows
the step, extrapolating with a safeguarded cubic, until an interval is known to contain acceptable
steps, then shrinks that interval ("zoom") by cubic interpolation of the two ends' values and slopes.
It mirrors PyTorch's ``torch.optim.LBFGS`` line search step for step, so the two libraries take the
same iterates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def cubic_minimizer(
    t1: float, f1: float, g1: float, t2: float, f2: float, g2: float, bounds: tuple | None = None
) -> float:
    """The minimiser of the cubic through (t1, f1) and (t2, f2) with slopes g1, g2, clipped to
    ``bounds`` (default: the interval between t1 and t2); its midpoint if the cubic has none.

    d1 = g1 + g2 - 3 (f1 - f2) / (t1 - t2),  d2 = sqrt(d1^2 - g1 g2),
    t* = t2 - (t2 - t1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)   (for t1 <= t2).
    """
    lo, hi = bounds if bounds is not None else (min(t1, t2), max(t1, t2))
    if t1 == t2:  # a collapsed interval: no cubic to fit
        return (lo + hi) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    d2_square = d1 * d1 - g1 * g2
    if not d2_square >= 0:  # no real minimiser (or not finite)
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    denominator = (g2 - g1 + 2 * d2) if t1 <= t2 else (g1 - g2 + 2 * d2)
    if denominator == 0 or not math.isfinite(denominator):
        return (lo + hi) / 2.0
    if t1 <= t2:
        t = t2 - (t2 - t1) * ((g2 + d2 - d1) / denominator)
    else:
        t = t1 - (t1 - t2) * ((g1 + d2 - d1) / denominator)
    if not math.isfinite(t):
        return (lo + hi) / 2.0
    return min(max(t, lo), hi)


def strong_wolfe(
    evaluate: Callable[[float], tuple[float, np.ndarray]],
    d: np.ndarray,
    t: float,
    f: float,
    g: np.ndarray,
    gtd: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, np.ndarray, float, int]:
    """Search for a step along ``d`` from the point where the loss is ``f``, the gradient ``g`` and
    the slope ``gtd = g . d`` (< 0), starting with the trial step ``t``.

    ``evaluate(t)`` returns the loss and the flat gradient at x + t d (and must leave x as it was).
    Returns ``(f_new, g_new, t, evaluations)`` for the best step found; after ``max_ls`` evaluations
    that is the best so far even if it does not satisfy both conditions.
    """
    d_norm = float(np.abs(d).max())
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    # Phase 1: grow the step until [t_prev, t] brackets acceptable steps (or t is one).
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, bracket_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # extrapolate: somewhere in [t + 0.01 (t - t_prev), 10 t]
        t_next = cubic_minimizer(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10)
        )
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g, bracket_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]

    # Phase 2 (zoom): shrink the bracket; `low` is the end with the lower loss.
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_minimizer(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        # Keep away from the ends: a step too close to one of them makes little progress.
        lo_end, hi_end = min(bracket), max(bracket)
        margin = 0.1 * (hi_end - lo_end)
        if min(hi_end - t, t - lo_end) < margin:
            if insufficient_progress or t >= hi_end or t <= lo_end:
                t = hi_end - margin if abs(t - hi_end) < abs(t - lo_end) else lo_end + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            # not enough decrease: t becomes the high end
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # the minimum lies on the other side of t: the old low end becomes the high end
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals
