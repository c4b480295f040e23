"""Every metric the Grafana dashboard plots is one the code registers."""

from __future__ import annotations

import json
import re

from chat4all.settings import REPO_ROOT as ROOT


def test_dashboard_metrics_exist_in_code() -> None:
    dashboard = json.loads((ROOT / "grafana" / "dashboards" / "chat4all.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"chat4all_[a-z_]+", e)}
    source = "\n".join(
        p.read_text() for d in ("api", "streams", "gateway", "chat4all") for p in (ROOT / d).rglob("*.py")
    )
    registered = set(re.findall(r'"(chat4all_[a-z_]+)"', source))
    assert used, "the dashboard plots nothing"
    assert used <= registered, f"dashboard plots unknown metrics: {sorted(used - registered)}"
