from bdbnet.reporting import format_table, metrics_row


def test_format_table_exact_output():
    table = format_table(
        ["Method", "Rank-1", "mAP"],
        [["BDB", 95.3, 86.7], ["x", 1.0, 100.0]],
    )
    assert table == (
        "| Method | Rank-1 | mAP   |\n"
        "|--------|--------|-------|\n"
        "| BDB    | 95.3   | 86.7  |\n"
        "| x      | 1.0    | 100.0 |"
    )


def test_format_table_formats_floats_with_one_decimal_and_keeps_other_values():
    table = format_table(
        ["k", "v"],
        [["epochs", 3], ["lr", 0.00035], ["rank1", 95.26], ["flag", True], ["none", None]],
    )
    assert table.splitlines() == [
        "| k      | v    |",
        "|--------|------|",
        "| epochs | 3    |",
        "| lr     | 0.0  |",
        "| rank1  | 95.3 |",
        "| flag   | True |",
        "| none   | None |",
    ]


def test_format_table_all_lines_have_equal_width():
    table = format_table(["a", "long header"], [["a very long cell", 1.25], ["b", 2]])
    lengths = {len(line) for line in table.splitlines()}
    assert len(lengths) == 1


def test_format_table_without_rows():
    assert format_table(["a", "bc"], []) == "| a | bc |\n|---|----|"


def test_metrics_row_gives_percentages():
    row = metrics_row("BDB", {"mAP": 0.5, "Rank-1": 0.25, "mINP": 0.125}, ["Rank-1", "mAP"])
    assert row == ["BDB", 25.0, 50.0]
    assert format_table(["Method", "Rank-1", "mAP"], [row]).splitlines()[-1] == (
        "| BDB    | 25.0   | 50.0 |"
    )
