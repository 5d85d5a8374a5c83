"""Classic models of the lecture: the perceptron, linear and logistic regression."""

from .linear import LinearRegression, LogisticRegression
from .perceptron import ConvergenceWarning, Perceptron, novikoff_bound
