"""Header rows: repeated names found, empty cells named."""

from isu.headers import header_problem, name_empty


def test_a_repeated_name_is_found_letter_case_and_spacing_aside():
    assert header_problem(["Kommun", "Personnummer"]) is None
    assert header_problem(["Kommun", " kommun", "Ärende"]) == (
        "the header repeats column names [' kommun', 'Kommun'] (letter case and spacing do not count); each column needs its own name")


def test_a_header_of_many_repeated_cells_is_one_name_once():
    # 80,000 cells of 'a' (a row of data pasted as the header) took 103 s: a count per cell
    assert header_problem(["a"] * 80_000) == "the header repeats column names ['a']; each column needs its own name"


def test_empty_cells_are_named_after_their_place():
    assert name_empty(["a", "", "column 2", ""]) == ("a", "column 2'", "column 2", "column 4")
