"""`chainrule run`: PyTorch programs resolved to chainrule, for that run only."""

import subprocess
import sys
import textwrap

import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.compat import NotSupportedError, run_script, torch_names


def _script(tmp_path, body: str, name: str = "prog.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_import_torch_gives_chainrule_inside_the_block_only():
    import torch as real_torch

    with torch_names():
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.optim.lr_scheduler import StepLR
        from torch.utils.data import DataLoader, TensorDataset

        assert torch.Tensor is cr.Tensor and nn.Linear is cr.nn.Linear and F.relu is cr.nn.functional.relu
        assert DataLoader is cr.data.DataLoader and TensorDataset is cr.data.TensorDataset
        assert StepLR is cr.optim.lr_scheduler.StepLR
        assert torch.autograd.Function is cr.autograd.Function
        assert repr(torch.ones(2, 3).shape) == "torch.Size([2, 3])"
        assert repr(torch.zeros(1, dtype=torch.float64)) == "tensor([0.], dtype=torch.float64)"
        assert torch.ones(1).type() == "torch.FloatTensor"
        assert str(torch.ones(1).dtype) == "torch.float32" and torch.ones(1).dtype == torch.float32
        assert torch.ones(1, dtype=torch.float64).dtype == torch.double == cr.float64
        assert torch.zeros(2).to(torch.int64).dtype == torch.long and torch.float32.is_floating_point
        assert {torch.float32: "f"}[torch.ones(1).dtype] == "f"
    import torch

    assert torch is real_torch and sys.modules["torch"] is real_torch
    assert repr(cr.ones(2).shape) == "chainrule.Size([2])" and str(cr.ones(1).dtype) == "float32"


def test_importing_chainrule_installs_no_hook():
    code = ("import sys, chainrule; "
            "assert not any('Torch' in type(f).__name__ for f in sys.meta_path); "
            "assert 'torch' not in sys.modules; print('clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "clean"


def test_missing_names_fail_naming_the_pytorch_api():
    with torch_names():
        import torch

        with pytest.raises(NotSupportedError, match=r"torch\.fft is not supported by chainrule"):
            _ = torch.fft
        assert not hasattr(torch, "compile_everything_please")  # still an AttributeError for hasattr
        with pytest.raises(ModuleNotFoundError, match=r"torch\.distributions is not supported"):
            import torch.distributions  # noqa: F401


def test_run_script_sets_argv_and_main(tmp_path, capsys):
    path = _script(tmp_path, """
        import sys
        import torch
        x = torch.arange(4.0, requires_grad=True)
        (x * x).sum().backward()
        if __name__ == "__main__":
            print(sys.argv[1:], x.grad.tolist(), f"{x.sum():.1f}")
    """)
    run_script(path, ["--lr", "0.1"])
    assert capsys.readouterr().out.strip() == "['--lr', '0.1'] [0.0, 2.0, 4.0, 6.0] 6.0"
    assert "torch" not in sys.modules or not type(sys.modules["torch"]).__name__.startswith("_Torch")


def test_cli_run_reports_unsupported_names_in_one_line(tmp_path, capsys):
    path = _script(tmp_path, """
        import torch
        from torch.fft import rfft
    """)
    assert main(["run", path]) == 1
    err = capsys.readouterr().err.strip()
    assert "torch.fft is not supported by chainrule" in err and "line 3" in err and "Traceback" not in err
    path = _script(tmp_path, "import torch\ny = torch.special.erfinv(torch.ones(1))\n", "p2.py")
    assert main(["run", path]) == 1
    assert "torch.special is not supported by chainrule" in capsys.readouterr().err


def test_cli_run_passes_exit_codes_and_tracebacks(tmp_path, capsys):
    assert main(["run", _script(tmp_path, "import sys\nsys.exit(3)\n")]) == 3
    assert main(["run", _script(tmp_path, "raise ValueError('boom')\n", "b.py")]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.py")]) == 2
    assert "no such script" in capsys.readouterr().err


def test_a_pytorch_training_loop_runs_and_learns(tmp_path, capsys):
    path = _script(tmp_path, """
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader, TensorDataset

        torch.manual_seed(0)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        x = torch.linspace(-1, 1, 64, device=device).unsqueeze(1)
        y = 3 * x + 0.5
        model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
        for epoch in range(60):
            for xb, yb in loader:
                loss = nn.functional.mse_loss(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        print(f"{loss.item():.6f}")
    """)
    assert main(["run", path]) == 0
    assert float(capsys.readouterr().out) < 0.01
