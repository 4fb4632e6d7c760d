"""The X-ray image model: a small depthwise-separable CNN with a heat-map head (PyTorch).

Input float32 (n, 3, 192, 192), the inverted pseudo-colour image at 3.5 mm per pixel
(``models.xray.preprocess``). The backbone (MobileNet-style blocks, stride 16, dilated
last blocks so one cell sees a whole banknote bundle) ends in a 1x1 convolution giving
one evidence map per category (card batch, gold, cash) on a 12 x 12 grid; a category's
score is the log-sum-exp pooling of its map, so the map that decides is the map that
localises. A small head on the pooled features gives the card kind (SIM, IoT, bank).
Outputs (ONNX names): ``scores`` (n, 3) sigmoid, ``heatmap`` (n, 3, 12, 12) sigmoid,
``kind`` (n, 3) softmax. Training-time only (torch is never a runtime dependency).
:class:`XrayNet` is model 1.0's CNN; :class:`XraySegNet` (model 1.3) the dense one,
same input and outputs, trained against the threat mask per 14 mm cell.
"""

from __future__ import annotations

import torch
from torch import nn

LSE_R = 4.0


def _dw(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, padding=dilation, dilation=dilation, groups=cin,
                  bias=False),
        nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class XrayNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c = [16, 32, 48, 64, 96, 128]
        self.features = nn.Sequential(
            # 4 input channels: the three colours and the optical depth read back from the
            # brightness (-ln of the brightest channel), so thick and thin stay apart
            nn.Conv2d(4, c[0], 3, 2, 1, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(inplace=True),
            _dw(c[0], c[1], 2), _dw(c[1], c[2]), _dw(c[2], c[3], 2), _dw(c[3], c[3]),
            _dw(c[3], c[4], 2), _dw(c[4], c[4], dilation=2), _dw(c[4], c[5], dilation=3),
            _dw(c[5], c[5], dilation=2))
        self.evidence = nn.Conv2d(c[5], 3, 1)
        self.kind = nn.Linear(c[5], 3)

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
        bright = (1.0 - x).amax(dim=1, keepdim=True).clamp(min=1e-3)
        depth = -torch.log(bright) / 3.0
        f = self.features(torch.cat([x, depth], dim=1))
        maps = self.evidence(f)                               # (n, 3, 12, 12)
        flat = maps.flatten(2)
        n_cells = flat.shape[-1]
        pooled = (torch.logsumexp(LSE_R * flat, dim=-1)
                  - torch.log(torch.tensor(float(n_cells)))) / LSE_R
        kind = self.kind(f.mean(dim=(2, 3)))
        return pooled, maps, kind

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled, maps, kind = self.forward_logits(x)
        return torch.sigmoid(pooled), torch.sigmoid(maps), torch.softmax(kind, dim=-1)


# --- model 1.3: dense (segmentation-style) supervision -------------------------------

DENSE_TOPK = 4      # a category's score pools its 4 hottest cells of the 48 x 48 map


class XraySegNet(nn.Module):
    """Segmentation-style CNN of model 1.3 (MobileNet-class depthwise blocks).

    Same input as :class:`XrayNet` (n, 3, 192, 192) at 3.5 mm. An encoder to stride 16
    with dilated blocks (one cell's view covers a banknote bundle), a light decoder back
    to stride 4 (48 x 48 cells of 14 mm, where a chip module or a gold granule is still
    one cell) that mixes in the stride-4 and stride-8 features, then one logit per
    category and cell. Trained against the simulator's threat mask per cell, so the
    logits are the heat map; a category's score is the mean of its :data:`DENSE_TOPK`
    hottest logits (a 20-card stack covers about 24 cells, a gold ring one). Outputs
    (ONNX names): ``scores`` (n, 3) sigmoid, ``heatmap`` (n, 3, 12, 12) sigmoid, the
    4 x 4 maximum of the dense map (the device's grid), ``kind`` (n, 3) softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(4, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU6(inplace=True))                       # 96
        self.s4 = nn.Sequential(_dw(16, 32, 2), _dw(32, 32))                    # 48
        self.s8 = nn.Sequential(_dw(32, 64, 2), _dw(64, 64))                    # 24
        self.s16 = nn.Sequential(_dw(64, 96, 2), _dw(96, 96, dilation=2),
                                 _dw(96, 128, dilation=3), _dw(128, 128, dilation=2))  # 12
        self.up8 = nn.Sequential(nn.Conv2d(128 + 64, 64, 1, bias=False), nn.BatchNorm2d(64),
                                 nn.ReLU6(inplace=True), _dw(64, 64))
        self.up4 = nn.Sequential(nn.Conv2d(64 + 32, 48, 1, bias=False), nn.BatchNorm2d(48),
                                 nn.ReLU6(inplace=True), _dw(48, 48))
        self.evidence = nn.Conv2d(48, 3, 1)
        self.kind = nn.Linear(128, 3)

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
        """(pooled logits (n, 3), dense logits (n, 3, 48, 48), kind logits (n, 3))."""
        bright = (1.0 - x).amax(dim=1, keepdim=True).clamp(min=1e-3)
        depth = -torch.log(bright) / 3.0
        f4 = self.s4(self.stem(torch.cat([x, depth], dim=1)))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        u8 = self.up8(torch.cat([nn.functional.interpolate(f16, scale_factor=2.0,
                                                           mode="nearest"), f8], dim=1))
        u4 = self.up4(torch.cat([nn.functional.interpolate(u8, scale_factor=2.0,
                                                           mode="nearest"), f4], dim=1))
        maps = self.evidence(u4)
        pooled = torch.topk(maps.flatten(2), DENSE_TOPK, dim=-1).values.mean(-1)
        kind = self.kind(f16.mean(dim=(2, 3)))
        return pooled, maps, kind

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled, maps, kind = self.forward_logits(x)
        heat = nn.functional.max_pool2d(torch.sigmoid(maps), 4)
        return torch.sigmoid(pooled), heat, torch.softmax(kind, dim=-1)
