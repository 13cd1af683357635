"""AAPOR rates (docs/domain.md §5) against a hand-computed example."""

from __future__ import annotations

import pandas as pd
import pytest

from scoring import aapor_symbol, response_rates

# I=6, P=2, R=3 (2.111, 2.112, 2.12 break-off), NC=2, O=1, UH=3, UR=1, UO=1, NE=4 (incl. 2 quota filled)
CODES = (["1.1"] * 6 + ["1.2"] * 2 + ["2.111", "2.112", "2.12"] + ["2.21", "2.221"] + ["2.31"]
         + ["3.11", "3.13", "3.14"] + ["3.20"] + ["3.90"] + ["4.10", "4.30", "4.80", "4.80"])


def test_symbols_of_the_telephone_codes():
    assert [aapor_symbol(c) for c in ["1.1", "1.2", "2.11", "2.112", "2.12", "2.21", "2.222", "2.33", "3.12",
                                      "3.16", "3.20", "3.90", "4.20", "4.51", "4.70", "4.80"]] == [
        "I", "P", "R", "R", "R", "NC", "NC", "O", "UH", "UH", "UR", "UO", "NE", "NE", "NE", "NE"]
    assert aapor_symbol(" 1.1 ") == "I" and aapor_symbol("nc") == "NC"
    for bad in ["5.1", "1.3", "abc", "", "2.4"]:
        with pytest.raises(ValueError, match="not an AAPOR final disposition"):
            aapor_symbol(bad)


def test_all_rates_and_e_by_hand():
    r = response_rates(pd.DataFrame({"disposition": CODES})).iloc[0]
    assert [int(r[s]) for s in ["I", "P", "R", "NC", "O", "UH", "UR", "UO", "NE", "n"]] == [6, 2, 3, 2, 1, 3, 1, 1,
                                                                                             4, 23]
    # D = I+P+R+NC+O = 14, U = 5, e = 14 / (14 + 4) = 7/9, D + eU = 14 + 35/9 = 161/9
    e = 14 / 18
    assert r["e"] == pytest.approx(e)
    deu = 14 + e * 5
    expected = {
        "RR1": 6 / 19, "RR2": 8 / 19, "RR3": 6 / deu, "RR4": 8 / deu, "RR5": 6 / 14, "RR6": 8 / 14,
        "COOP1": 6 / 12, "COOP2": 8 / 12, "COOP3": 6 / 11, "COOP4": 8 / 11,
        "REF1": 3 / 19, "REF2": 3 / deu, "REF3": 3 / 14,
        "CON1": 12 / 19, "CON2": 12 / deu, "CON3": 12 / 14,
    }
    assert deu == pytest.approx(161 / 9)
    for name, want in expected.items():
        assert r[name] == pytest.approx(want), name


def test_fixed_e_and_groups():
    df = pd.DataFrame({"disposition": CODES + ["1.1", "3.13", "4.80"],
                       "enterprise": ["a"] * len(CODES) + ["b"] * 3})
    out = response_rates(df, by="enterprise", e=0.5).set_index("enterprise")
    assert out.loc["a", "e"] == 0.5
    assert out.loc["a", "RR3"] == pytest.approx(6 / (14 + 2.5))
    assert out.loc["b", "RR1"] == pytest.approx(1 / 2)  # I=1, U=1
    assert out.loc["b", "RR5"] == pytest.approx(1.0)
    est = response_rates(df, by=["enterprise"]).set_index("enterprise")
    assert est.loc["b", "e"] == pytest.approx(1 / 2)  # D=1, NE=1


def test_empty_denominators_give_nan_not_errors():
    out = response_rates(pd.DataFrame({"disposition": ["4.80", "4.10"]})).iloc[0]
    assert pd.isna(out["RR1"]) and pd.isna(out["COOP1"]) and out["e"] == 0.0


def test_bad_disposition_names_row_and_column():
    df = pd.DataFrame({"disposition": ["1.1", "7.7"]})
    with pytest.raises(ValueError, match=r"row 1, column disposition: '7\.7' is not an AAPOR"):
        response_rates(df)
    with pytest.raises(ValueError, match="row 0, column final_code: empty disposition"):
        response_rates(pd.DataFrame({"final_code": [None, "1.1"]}), disposition_col="final_code")
    with pytest.raises(ValueError, match="e = 2"):
        response_rates(pd.DataFrame({"disposition": ["1.1"]}), e=2)
