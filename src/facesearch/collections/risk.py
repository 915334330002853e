"""False-match risk of a search at a collection's size: pure arithmetic on the calibrated similarity scale.

A search of a collection of N faces is N comparisons. If one comparison of two different people reaches
threshold t with probability FMR(t) (engine/similarity.py: FMR(t) = ((100 − t)/100)³, fitted on all LFW
impostor pairs), a search for a stranger returns on average N·FMR(t) false candidates and at least one with
probability 1 − (1 − FMR(t))^N (comparisons taken as independent; ``facesearch eval`` checks this against
measured open-set searches on LFW). The default threshold of a search is the lowest similarity whose expected
false candidates stay within a budget at the collection's current size, never below the collection's floor: a
small collection stays usable, a 300,000-face gallery gets a strict threshold automatically.

The default is planned against SAFETY_FACTOR × LFW's FMR, not LFW's FMR itself: on LFW's own open-set searches
(2,000 strangers against one-photo galleries of 100 to 3,704 people) the false candidates per search measured
0.5 to 1.33 times N·FMR, depending on which faces the gallery holds, and a deployment's population is not
LFW's. The risk figures reported (DescribeCollection's FalseMatchRisk) are the plain N·FMR expectation.
"""

from __future__ import annotations

import math

from facesearch.engine.similarity import fmr_at_similarity, similarity_at_fmr

__all__ = [
    "DEFAULT_BUDGET",
    "IDENTIFICATION_FLOOR",
    "SAFETY_FACTOR",
    "budgeted_threshold",
    "exceeds_budget",
    "expected_false_candidates",
    "fmr_at_similarity",
    "probability_of_any_false_candidate",
    "risk_at",
]

DEFAULT_BUDGET = 0.1  # expected false candidates per search for someone not in the collection
SAFETY_FACTOR = 2.0  # the budgeted default assumes a gallery may falsely match twice as often as LFW
# Collections whose floor is at least this are identification collections: a search naming a threshold whose
# expected false candidates exceed the budget is refused rather than run.
IDENTIFICATION_FLOOR = 99.0
STEP = 0.01  # thresholds are reported and applied in hundredths of a similarity point


def expected_false_candidates(threshold: float, faces: int) -> float:
    """Mean number of faces of other people at or above ``threshold`` in one search of ``faces`` faces."""
    return max(faces, 0) * fmr_at_similarity(threshold)


def probability_of_any_false_candidate(threshold: float, faces: int) -> float:
    """1 − (1 − FMR)^N, computed without losing precision for tiny FMR and huge N."""
    fmr = fmr_at_similarity(threshold)
    if faces <= 0 or fmr <= 0.0:
        return 0.0
    if fmr >= 1.0:
        return 1.0
    return -math.expm1(faces * math.log1p(-fmr))


def budgeted_threshold(
    faces: int, *, budget: float = DEFAULT_BUDGET, floor: float, safety: float = SAFETY_FACTOR
) -> float:
    """Lowest similarity (in steps of 0.01), never below ``floor``, at which ``faces`` comparisons falsely
    matching at ``safety`` × FMR are expected to return at most ``budget`` false candidates."""
    if budget <= 0:
        raise ValueError(f"budget must be > 0, got {budget}")
    if safety < 1:
        raise ValueError(f"safety factor must be ≥ 1, got {safety}")
    if faces <= 0:
        return float(floor)
    exact = similarity_at_fmr(min(budget / (faces * safety), 1.0))
    t = math.ceil(round(exact / STEP, 6)) * STEP  # round up: a stricter threshold only lowers the expectation
    return float(min(max(round(t, 2), floor), 100.0))


def risk_at(threshold: float, faces: int) -> dict[str, float]:
    """One FalseMatchRisk entry, Rekognition-style field names (DescribeCollection)."""
    return {
        "Threshold": round(float(threshold), 2),
        "FalseMatchRatePerComparison": fmr_at_similarity(threshold),
        "ExpectedFalseCandidatesPerSearch": expected_false_candidates(threshold, faces),
        "ProbabilityOfAnyFalseCandidate": probability_of_any_false_candidate(threshold, faces),
    }


def exceeds_budget(threshold: float, faces: int, budget: float) -> bool:
    """True when a search at ``threshold`` is expected to return more than ``budget`` false candidates."""
    return expected_false_candidates(threshold, faces) > budget * (1 + 1e-9)
