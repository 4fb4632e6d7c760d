"""Waybill export: parsed, bad lines counted with line numbers, refreshed on change."""

from __future__ import annotations

import os
from pathlib import Path

from edge.courier.waybills import WaybillStore


def test_load_reject_and_refresh(tmp_path: Path) -> None:
    f = tmp_path / "wb.jsonl"
    f.write_text('{"waybill": "SF1234567890123", "declared": "clothes", '
                 '"declared_value_cny": 200, "sender_verified": true, "sender_id": "X1", '
                 '"sender_phone": "13800000000", "receiver_phone": "13900000000", '
                 '"origin": "Yiwu", "dest": "Shenzhen"}\n'
                 'not json\n[1]\n{"waybill": 5}\n{"waybill": "A", "declared_value_cny": "x"}\n')
    st = WaybillStore(f, refresh_s=10)
    wb = st.get("SF1234567890123")
    assert wb is not None and wb.declared_value_cny == 200.0 and wb.sender_phone == "13800000000"
    assert st.counters() == {"known": 1, "loads": 1, "rejected": 4, "load_failures": 0}
    f.write_text('{"waybill": "YT7390012345678"}\n')
    os.utime(f, ns=(1, 1))
    st.maybe_refresh(100.0)
    assert st.get("YT7390012345678") is not None and st.get("SF1234567890123") is None
    f.unlink()
    st.maybe_refresh(200.0)
    assert st.get("YT7390012345678") is not None and st.load_failures == 1
