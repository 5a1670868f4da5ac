"""Learning from reviewers: a risk score per turn and category, suspected lines the
rules missed, retraining from reviewers' decisions, and rule suggestions.

    data.py       the labelled lines shipped in the repository, and reviewers' decisions
    model.py      the versioned risk-model file: features, calibrated scorers, thresholds
    training.py   fit the scorers, choose each category's threshold on held-out scores
    suspects.py   a call's risks and suspected lines (above threshold, no rule fired)
    learn.py      ``monitor learn``: retrain with decisions, compare, install if not worse
    suggest.py    candidate rule examples from reviewers' decisions

Sits beside ``monitor.runs``: it reads detection and the store, and documents and the web
app read it. Suspected lines are never findings; a reviewer's confirmation makes one.
"""
