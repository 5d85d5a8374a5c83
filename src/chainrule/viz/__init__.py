"""Seeing backprop: graph drawings with values and gradients, the chain rule step by step, gradient
checks, training diagnostics and plots."""

from . import plots
from .diagnostics import Diagnostics
from .draw import GraphDrawing, draw_graph
from .explain import ChainStep, Deltas, Explanation, deltas, explain
from .gradcheck import ModelGradcheck, gradcheck_model
from .graph import build_graph, op_label
from .modules import trace_modules
from .plots import DecisionBoundaryRecorder
