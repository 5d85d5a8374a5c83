"""A character-level LSTM learns to continue a text: Embedding -> LSTM -> Linear, trained by
backpropagation through time.

Each training example is a window of characters; the target at every step is the next character, so
the loss is the cross-entropy of 12 predictions per window. Gradients flow back through the LSTM's
steps (the graph is the unrolled loop). After training the model writes text one character at a time,
feeding its own output back in with the LSTM state carried over, and the weights are saved as a
safetensors file with PyTorch's names (``weight_ih_l0``, ...), which ``torch.nn.LSTM`` loads as is.

    python examples/char_lstm.py --out char_lstm/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F

TEXT = (
    "the chain rule multiplies local derivatives along every path of the graph. "
    "backprop walks the graph backwards and sums what arrives at each node. "
) * 4


class CharModel(nn.Module):
    def __init__(self, vocab: int, embed: int = 12, hidden: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state


def batches(codes: np.ndarray, window: int, batch: int, rng: np.random.Generator):
    starts = rng.integers(0, codes.size - window - 1, size=batch)
    x = np.stack([codes[s:s + window] for s in starts])
    y = np.stack([codes[s + 1:s + window + 1] for s in starts])
    return cr.tensor(x), cr.tensor(y)


def generate(model: CharModel, prompt: str, chars: list, length: int) -> str:
    """Greedy decoding: the most likely next character, the state carried from step to step."""
    index = {c: i for i, c in enumerate(chars)}
    model.eval()
    with cr.no_grad():
        logits, state = model(cr.tensor([[index[c] for c in prompt]]))
        text = prompt
        for _ in range(length):
            nxt = int(logits.numpy()[0, -1].argmax())
            text += chars[nxt]
            logits, state = model(cr.tensor([[nxt]]), state)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-char-lstm-"))
    out.mkdir(parents=True, exist_ok=True)

    chars = sorted(set(TEXT))
    codes = np.array([chars.index(c) for c in TEXT])
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    model = CharModel(len(chars))
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for step in range(args.steps):
        x, y = batches(codes, window=24, batch=16, rng=rng)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        cr.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}")
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"mean loss of the first 10 steps {first:.3f}, of the last 10 steps {last:.3f}")
    sample = generate(model, "the chain", chars, 60)
    print(f"generated: {sample!r}")
    cr.save(model, out / "char_lstm.safetensors")
    (out / "generated.txt").write_text(sample + "\n")
    print(f"weights and sample in {out}")


if __name__ == "__main__":
    main()
