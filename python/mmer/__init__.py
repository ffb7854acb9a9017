"""mmer — multimodal emotion recognition in conversation, from Python.

The emotion of every turn of a conversation, from a model trained with
``mmer train`` (or the one that ships with mmer), and the analysis of a
recording with the shipped text, voice and face models::

    import mmer

    model = mmer.Predictor.load("assets/models/text-meld-minilm")
    turns = model.predict([
        {"dialogue": "d1", "turn": 0, "speaker": "Ana", "text": "You got the job?"},
        {"dialogue": "d1", "turn": 1, "speaker": "Ben", "text": "I start Monday."},
    ])
    turns[0]["emotion"], turns[0]["confidence"], turns[0]["probabilities"]

    mmer.analyze("assets/examples/1001_DFA_ANG_XX.flv")["turns"]

    analyzer = mmer.Analyzer.load()      # the models load once
    [analyzer.analyze(path) for path in ["call-1.wav", "call-2.wav"]]

The models run in Rust (the native module ``mmer._mmer``); the GIL is
released while they do. Records follow the rules of mmer's conversation
files, and errors in them raise :class:`MmerError` with the message the
``mmer`` command prints, naming the record (or DataFrame row) by its index.
"""

from mmer._analyze import Analyzer, analyze
from mmer._mmer import MmerError, __version__
from mmer._predictor import Predictor

__all__ = ["Analyzer", "MmerError", "Predictor", "__version__", "analyze"]
