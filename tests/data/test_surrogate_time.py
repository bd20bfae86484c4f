"""The surrogate's classes unfold over time: reading all 10 steps beats reading the last one."""
import numpy as np
import torch

from cl_rnn.data.surrogate import make_surrogate


def _train_and_test(x_train, y_train, x_test, y_test, steps: int, iterations: int = 300) -> float:
    torch.manual_seed(0)
    rnn, head = torch.nn.GRU(128, 32), torch.nn.Linear(32, 10)
    optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        batch = torch.randint(0, len(y_train), (64,), generator=generator)
        out, _ = rnn(x_train[batch, -steps:].transpose(0, 1))
        loss = torch.nn.functional.cross_entropy(head(out[-1]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        out, _ = rnn(x_test[:, -steps:].transpose(0, 1))
        return (head(out[-1]).argmax(1) == y_test).float().mean().item() * 100


def test_all_steps_beat_last_step_by_a_clear_margin():
    torch.set_num_threads(1)
    x, y, train_idx, test_idx, _ = make_surrogate(seed=0, clips_per_class=400, num_classes=20)
    scaled = (torch.from_numpy(x).float() - 128) / 64  # the data's property, not input scaling
    labels = torch.from_numpy(y)
    gaps = []
    for classes in (np.arange(10), np.arange(10, 20)):  # two 10-way tasks
        tr = torch.from_numpy(train_idx[np.isin(y[train_idx], classes)])
        te = torch.from_numpy(test_idx[np.isin(y[test_idx], classes)])
        data = (scaled[tr], labels[tr] - classes[0], scaled[te], labels[te] - classes[0])
        all_steps = _train_and_test(*data, steps=10)
        last_step = _train_and_test(*data, steps=1)
        print(f"classes {classes[0]}-{classes[-1]}: all steps {all_steps:.1f}%, last step {last_step:.1f}%")
        assert all_steps > 50
        gaps.append(all_steps - last_step)
    assert min(gaps) > 20
