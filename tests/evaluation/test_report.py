"""EvalReport names the AP definition behind its mAP."""

from bdbnet.evaluation.report import AP_KEYS, EvalReport


def reid_report(mode: str) -> EvalReport:
    maps = {"full": 0.5, "truncated": 0.25, "trapezoid": 0.375}
    metrics = {"mAP": maps[mode], "Rank-1": 0.75, "mINP": 0.125, "ap_mode": mode}
    metrics.update({AP_KEYS[m]: v for m, v in maps.items()})
    return EvalReport("reid", metrics)


def test_summary_and_labels_name_the_ap_definition():
    report = reid_report("truncated")
    assert report.ap_mode == "truncated"
    assert report.headline() == {"mAP": 0.25, "Rank-1": 0.75, "mINP": 0.125}
    assert report.label("mAP") == "mAP (truncated)" and report.label("Rank-1") == "Rank-1"
    assert report.summary() == "mAP (truncated) 25.0  Rank-1 75.0  mINP 12.5"


def test_retrieval_reports_have_no_ap_mode():
    report = EvalReport("retrieval", {"R@1": 0.5, "R@2": 0.75})
    assert report.ap_mode is None and report.label("R@1") == "R@1"
    assert report.summary() == "R@1 50.0  R@2 75.0"
