"""The ``chainrule`` command: parses arguments and calls the library, nothing more.

Subcommands register themselves in ``COMMANDS`` through small ``add_*`` functions; every handler
calls library functions that are tested on their own.
"""

from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``chainrule train: error: ...`` and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum`` (argparse names the option in its error)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {text!r}")
        return value

    return convert


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (``inf``, ``nan`` and 0 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def _layer_sizes(text: str) -> tuple:
    """An argparse type for ``--hidden``: comma-separated positive widths, or ``none`` for no hidden layer."""
    if text.strip().lower() in ("none", "linear", "0"):
        return ()
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected layer sizes separated by commas like 128,64 (or 'none' for no hidden layer), got {text!r}")
    sizes = []
    for p in parts:
        if not p.isdigit() or int(p) < 1:
            raise argparse.ArgumentTypeError(
                f"{p!r} is not a layer size; expected positive whole numbers separated by commas like 128,64")
        sizes.append(int(p))
    return tuple(sizes)


def _add_threads(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads for matrix products (default: NumPy's choice; 1 is often fastest for "
                        "small networks and on a busy machine)")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a dataset and write a run folder",
        description="Train a model (an MLP by default) on a dataset (the bundled digits by default), "
        "print the held-out test accuracy and loss, and write the checkpoint, the history (JSON and "
        "CSV) and the training curves under OUT/NAME/.",
    )
    p.add_argument("--dataset", default="digits",
                   help="digits (default), moons, circles, spirals, xor, blobs, mnist-subset, "
                        "idx:FOLDER (MNIST/Fashion-MNIST IDX files), or csv:FILE (last column = label)")
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"], help="mlp (default) or cnn (LeNet-style)")
    p.add_argument("--hidden", default="128,64", type=_layer_sizes,
                   help="hidden layer sizes of the MLP, e.g. 128,64 (default), or none for a linear model")
    p.add_argument("--activation", default="relu",
                   help="relu (default), leaky_relu, prelu, elu, sigmoid, tanh, gelu, silu, softplus")
    p.add_argument("--loss", default="cross_entropy",
                   help="cross_entropy (default); nll (adds a log-softmax head); hinge; mse, l1, huber or "
                        "bce_with_logits (on one-hot targets); bce (one-hot targets, sigmoid head)")
    p.add_argument("--optimizer", default="adam",
                   help="adam (default), adamw, sgd, momentum, nesterov, rmsprop, adagrad")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: the optimizer's, 1e-3 for adam)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=32, help="mini-batch size (default 32)")
    p.add_argument("--epochs", type=_int_at_least(1), default=30, help="passes over the training data (default 30)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout between MLP layers (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed for splits, init and shuffling (default 0)")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="fraction of the training part held out for validation (default 0.1)")
    p.add_argument("--test-split", type=float, default=0.2, help="fraction held out for the test (default 0.2)")
    p.add_argument("--out", default="runs", help="folder for run folders (default runs/)")
    p.add_argument("--name", default=None, help="run name (default: DATASET-MODEL, numbered if taken)")
    p.add_argument("--overwrite", action="store_true", help="replace the run folder OUT/NAME if it exists")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue an interrupted run folder (Ctrl-C or SIGTERM saves one) with its own options")
    p.add_argument("--plots", action="store_true", help="also write every diagnostic plot of the run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=None,
                   help="train data-parallel on N processes of this machine, launched through mpiexec "
                   "(needs chainrule[mpi]; one BLAS thread each unless --threads; --batch-size is the "
                   "global batch, split over them)")
    _add_threads(p)
    p.set_defaults(handler=_train)


def _launch_ranks(args) -> int:
    """Run this same command on ``--nproc`` ranks through mpiexec (the mpich wheel ships one)."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    from .distributed.process_group import _INSTALL

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    here = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(here) if here.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        raise ImportError(f"--nproc needs mpiexec; install it with: {_INSTALL}")
    argv = list(args.argv)
    for i, a in enumerate(argv):  # drop --nproc N / --nproc=N: the ranks train, they do not launch
        if a == "--nproc":
            del argv[i : i + 2]
            break
        if a.startswith("--nproc="):
            del argv[i]
            break
    threads = str(args.threads or 1)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    cmd = [mpiexec, "-n", str(args.nproc), sys.executable, "-m", "chainrule.cli", *argv]
    return subprocess.run(cmd, env=env).returncode


def _train(args) -> int:
    from .distributed import get_rank, launched_by_mpi
    from .train.runs import TrainConfig, resume_run, train_run

    if args.resume is not None:
        # The run's own options (run.json) decide how it continues: any other is refused, not ignored.
        given = [a.split("=", 1)[0] for a in args.argv[1:] if a.startswith("--")]
        ignored = sorted(set(given) - {"--resume", "--quiet", "--threads", "--traceback"})
        if ignored:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError(f"--resume continues {args.resume} with the options it was started with; "
                                       f"drop {', '.join(ignored)}")
        return _report_run(resume_run(args.resume, verbose=0 if args.quiet else 1))

    if args.nproc is not None and not launched_by_mpi():
        return _launch_ranks(args)

    config = TrainConfig(
        dataset=args.dataset, model=args.model, hidden=args.hidden, activation=args.activation, loss=args.loss,
        optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
        weight_decay=args.weight_decay, dropout=args.dropout, seed=args.seed, val_split=args.val_split,
        test_split=args.test_split,
    )
    result = train_run(config, out=args.out, name=args.name, verbose=0 if args.quiet else 1, plots=args.plots,
                       overwrite=args.overwrite)
    if launched_by_mpi() and get_rank() != 0:
        return 0
    return _report_run(result)


def _report_run(result) -> int:
    if result.interrupted is not None:
        import signal

        print(f"chainrule train: interrupted by {signal.Signals(result.interrupted).name}: the run is saved at epoch "
              f"{result.info['epochs_run']} of {result.info['config']['epochs']} in {result.run_dir} (marked "
              f"interrupted); continue it with: chainrule train --resume {result.run_dir}", file=sys.stderr)
        return 128 + result.interrupted
    print(f"test accuracy: {result.test['accuracy']:.4f}  test loss: {result.test['loss']:.4f}")
    print(f"run written to {result.run_dir}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained run on its held-out test set",
                       description="Rebuild the model of a run folder from its checkpoint and report its "
                       "accuracy and loss on the run's held-out test set.")
    p.add_argument("run", help="a run folder written by `chainrule train`")
    p.set_defaults(handler=_evaluate)


def _evaluate(args) -> int:
    from .train.runs import evaluate_run

    test = evaluate_run(args.run)
    print(f"test accuracy: {test['accuracy']:.4f}  test loss: {test['loss']:.4f}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict classes for the rows of a CSV file",
                       description="Predict with a trained run: INPUT.csv holds one example per row "
                       "(the same features as the training data, no label column).")
    p.add_argument("run", help="a run folder written by `chainrule train`")
    p.add_argument("input", help="CSV file of inputs, one row per example (a header row is skipped)")
    p.add_argument("-o", "--output", default=None, help="write predictions to this CSV instead of printing")
    p.add_argument("--proba", action="store_true", help="also give the class probabilities")
    p.set_defaults(handler=_predict)


def _predict(args) -> int:
    from .train.runs import predict_run

    rows = predict_run(args.run, args.input, proba=args.proba)
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    if args.output:
        from .train.history import atomic_write_text

        atomic_write_text(args.output, text)
        print(f"{len(rows) - 1} predictions written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _add_compare(sub) -> None:
    from .train.compare import METHODS

    p = sub.add_parser("compare", help="train the same model with several optimizers and compare them",
                       description="Train one MLP from the same initial weights with each optimizer "
                       "(gd = full batch, sgd = one example per step, minibatch = --batch-size examples) "
                       "and write a table and plots of the loss against iterations, epochs and time.")
    p.add_argument("--dataset", default="moons", help="moons (default), circles, spirals, xor or blobs")
    p.add_argument("--optimizers", default=",".join(METHODS), help=f"comma-separated (default {','.join(METHODS)})")
    p.add_argument("--hidden", default="8", type=_layer_sizes, help="hidden layer sizes (default 8)")
    p.add_argument("--epochs", type=_int_at_least(1), default=30,
                   help="data passes for stochastic methods, iterations for full-batch ones (default 30)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=16,
                   help="B for minibatch, momentum and adam (default 16)")
    p.add_argument("--samples", type=_int_at_least(2), default=200, help="training examples (default 200)")
    p.add_argument("--gradient", default="analytic", choices=["analytic", "numerical"],
                   help="analytic (backprop, default) or numerical (finite differences: slow, as the lecture warns)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    _add_threads(p)
    p.set_defaults(handler=_compare)


def _compare(args) -> int:
    from .errors import InvalidArgumentError
    from .train.compare import METHODS, compare, format_table, write_outputs

    methods = [m.strip() for m in args.optimizers.split(",") if m.strip()]
    if not methods:
        raise InvalidArgumentError(f"--optimizers: no optimizer named in {args.optimizers!r}; give a "
                                   f"comma-separated list like gd,adam from {', '.join(METHODS)}")
    runs = compare(args.dataset, methods, hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size,
                   gradient=args.gradient, n_samples=args.samples, seed=args.seed)
    print(format_table(runs))
    write_outputs(runs, args.out)
    print(f"table and plots written to {args.out}")
    return 0


def _add_graph(sub) -> None:
    p = sub.add_parser("graph", help="draw the computational graph of an expression with values and gradients",
                       description='Draw the graph of an expression such as "(x + y) * z": every value with '
                       "its gradient, every op. Expressions use numbers, names, + - * / ** and the functions "
                       "exp, log, sqrt, sin, cos, tanh, sigmoid, relu, abs, square, sum, mean, max, min.")
    p.add_argument("expression", help='e.g. "(x + y) * z"')
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                   help="values of the names, e.g. x=1 y=-3 z=4 or w=[0.5,-1]")
    p.add_argument("-o", "--output", default="graph.svg", help="output file: .svg (default graph.svg), .png or .dot")
    p.add_argument("--no-grads", action="store_true", help="leave the gradients out")
    p.set_defaults(handler=_graph)


def _graph(args) -> int:
    from .viz import commands

    path = commands.graph(args.expression, args.set, args.output, grads=not args.no_grads)
    print(f"graph written to {path}")
    return 0


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="print the chain rule step by step for an expression",
                       description="Backprop through an expression written out: for every op, from the "
                       "output back, the upstream gradient, the local derivative and their product.")
    p.add_argument("expression", help='e.g. "(x + y) * z"')
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", help="values of the names, e.g. x=1 y=-3 z=4")
    p.add_argument("--markdown", action="store_true", help="Markdown with LaTeX instead of a text table")
    p.set_defaults(handler=_explain)


def _explain(args) -> int:
    from .viz import commands

    print(commands.explain(args.expression, args.set, markdown=args.markdown))
    return 0


def _add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="check a trained run's gradients against finite differences",
                       description="Compare backprop's gradient of every parameter of a run's model with "
                       "central differences (float64) on a few test examples; exit status 1 if any fails.")
    p.add_argument("run", help="a run folder written by `chainrule train`")
    p.add_argument("--samples", type=_int_at_least(1), default=8, help="test examples to use (default 8)")
    p.add_argument("--entries", type=_int_at_least(1), default=10, help="entries checked per parameter (default 10)")
    p.set_defaults(handler=_gradcheck)


def _gradcheck(args) -> int:
    from .viz import commands

    report = commands.gradcheck_run(args.run, samples=args.samples, max_entries=args.entries)
    print(report.to_text())
    return 0 if report.ok else 1


COMMANDS = [_add_train, _add_evaluate, _add_predict, _add_compare, _add_graph, _add_explain, _add_gradcheck]


def _add_playground(sub) -> None:
    p = sub.add_parser("playground", help="open the playground: build a network, train it and watch backprop live",
                       description="Start the playground's local web server and open the page: build a network, "
                       "train it on 2-D data (or your CSV) and watch the computational graph, the chain rule and "
                       "the gradients as it learns. Needs the extra: pip install 'chainrule[playground]'.")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any other warns)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(handler=_playground)


def _playground(args) -> int:
    import warnings

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        from .playground import app
    except ImportError as e:
        raise ImportError(f"the playground needs its extra ({e.name} is missing): pip install 'chainrule[playground]'") from None
    host = "127.0.0.1" if args.host == "localhost" else args.host
    if not app.is_loopback(host):
        print(f"chainrule playground: warning: listening on {host}:{args.port}; anyone who can reach this port "
              "can use the playground (and this machine's CPU)", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"chainrule playground: http://{shown}:{args.port}/  (Ctrl+C to stop)", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the host warning, printed above
        app.serve(host=host, port=args.port, open_browser=not args.no_browser)
    return 0


COMMANDS.append(_add_playground)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run an unmodified PyTorch script on chainrule",
                       description="Run a PyTorch program as __main__ with `import torch` (and torch.nn, "
                       "torch.optim, torch.utils.data, ...) resolved to chainrule for this run only. "
                       "A PyTorch name chainrule lacks stops the run with an error naming it.")
    p.add_argument("script", help="the Python file to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script as sys.argv[1:]")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    import traceback

    from .compat import NotSupportedError, NotSupportedModuleError, run_script

    try:
        run_script(args.script, args.args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (NotSupportedError, NotSupportedModuleError) as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith(args.script)]
        where = f" ({args.script}, line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
        print(f"{e}{where}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        if str(e).startswith("chainrule run"):
            print(f"{e}", file=sys.stderr)
            return 2
        traceback.print_exc()
        return 1
    except Exception:  # the script's own error: show its traceback, as python would
        traceback.print_exc()
        return 1
    return 0


COMMANDS.append(_add_run)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="chainrule",
        description="chainrule: neural networks as computational graphs, trained by backpropagation.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    for p in (parser, *sub.choices.values()):
        p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error (or set CHAINRULE_TRACEBACK=1)")
    parser._commands = sub.choices
    return parser


# Subcommands whose first positional argument is an expression, which may start with a minus.
_EXPRESSION_COMMANDS = ("graph", "explain")


def _protect_expression(parser, argv: list) -> list:
    """``chainrule graph "-x*y"``: argparse would take ``-x*y`` for an option. A token that starts
    with '-' but is none of the subcommand's options (nor a prefix of one) is passed on as the
    expression, with a leading space that the parser of expressions ignores."""
    if not argv or argv[0] not in _EXPRESSION_COMMANDS:
        return argv
    options = parser._commands[argv[0]]._option_string_actions
    out = [argv[0]]
    for token in argv[1:]:
        if token.startswith("-") and token != "--" and not _is_option(token, options):
            token = " " + token
        out.append(token)
    return out


def _is_option(token: str, options) -> bool:
    head = token.split("=", 1)[0]
    if head in options:
        return True
    if head.startswith("--"):
        return any(o.startswith(head) for o in options)
    return token[:2] in options  # a short option with its value attached, like -ograph.svg


def _one_line_warning(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"chainrule {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Run the command line. User errors print one line and exit 1; internal errors say they are a
    bug (exit 70); ``--traceback`` or ``CHAINRULE_TRACEBACK=1`` adds the traceback to either."""
    import warnings

    from . import errors

    parser = build_parser()
    argv = _protect_expression(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    from . import backend

    backend.tune_malloc()  # the command opts in to reusing freed memory (see backend.tune_malloc)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    show_traceback = errors.traceback_requested(getattr(args, "traceback", False))
    with warnings.catch_warnings():
        # warnings (NumPy's included) as one line each, without the source line they came from
        warnings.showwarning = _one_line_warning(args.command)
        try:
            if getattr(args, "threads", None) is None:
                return args.handler(args)
            if args.threads < 1:
                raise errors.InvalidArgumentError(f"--threads must be at least 1, got {args.threads}")
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=args.threads, user_api="blas"):
                return args.handler(args)
        except BrokenPipeError:  # the reader of our output went away (| head): nothing to report
            return 141
        except KeyboardInterrupt:
            print("chainrule: interrupted", file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001 - the one place that turns errors into exit statuses
            return errors.report(e, args.command, show_traceback)


if __name__ == "__main__":
    sys.exit(main())
