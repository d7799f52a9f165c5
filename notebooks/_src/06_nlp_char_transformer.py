# %% [markdown]
# # 6. NLP: a character-level transformer
#
# A tiny GPT-style model learns to continue text character by character. The text ships with
# the repository (`notebooks/data/tiny_corpus.txt`). We draw its attention maps at the end.

# %%
import math
import pathlib
import time

import matplotlib.pyplot as plt

import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F

torch.manual_seed(0)
text = pathlib.Path("data/tiny_corpus.txt").read_text()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
itos = {i: c for c, i in stoi.items()}
data = torch.tensor([stoi[c] for c in text])
print(len(text), "characters,", len(chars), "distinct")

block, batch = 32, 32


def get_batch():
    ix = torch.randint(0, len(data) - block - 1, (batch,))
    x = torch.stack([data[i:i + block] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + block + 1] for i in ix.tolist()])
    return x, y

# %% [markdown]
# ## The model
# Token and position embeddings, two pre-norm transformer blocks with causal self-attention
# (`nn.MultiheadAttention`), and a linear read-out.

# %%
class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.last_attn = None

    def forward(self, x, mask):
        h = self.ln1(x)
        a, w = self.attn(h, h, h, attn_mask=mask, need_weights=True)
        self.last_attn = w.detach()
        x = x + a
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab, d=64, heads=4, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        t = idx.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        x = self.tok(idx) + self.pos(torch.arange(t))
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln(x))


model = CharGPT(len(chars))
print(sum(p.numel() for p in model.parameters()), "parameters")
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

# %% [markdown]
# ## Training
# The loss starts near ln(vocabulary size) (uniform guessing) and falls as the model learns
# which characters follow which.

# %%
print("uniform guess:", math.log(len(chars)))
start, losses = time.perf_counter(), []
for step in range(200):
    x, y = get_batch()
    loss = F.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
print(f"{time.perf_counter() - start:.1f} s; loss {losses[0]:.2f} -> {sum(losses[-20:]) / 20:.2f}")
plt.figure(figsize=(5, 2.5)); plt.plot(losses); plt.xlabel("step"); plt.ylabel("loss");
assert sum(losses[-20:]) / 20 < losses[0] - 0.8

# %% [markdown]
# ## Sampling

# %%
@torch.no_grad()
def generate(prompt, n=120, temperature=0.5):
    idx = torch.tensor([[stoi[c] for c in prompt]])
    for _ in range(n):
        logits = model(idx[:, -block:])[:, -1] / temperature
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1)
        idx = torch.cat([idx, nxt], dim=1)
    return "".join(itos[i] for i in idx[0].tolist())


model.eval()
print(generate("The "))

# %% [markdown]
# ## Attention maps
# Each head of each layer: row = query position, column = key position. The causal mask shows
# as the empty upper triangle.

# %%
x, _ = get_batch()
model(x[:1])
fig, axes = plt.subplots(1, len(model.blocks), figsize=(7, 3.5))
for ax, b in zip(axes, model.blocks):
    ax.imshow(b.last_attn[0].numpy(), cmap="viridis")
    ax.set_title("layer " + str(list(model.blocks).index(b)) + " (heads averaged)")
