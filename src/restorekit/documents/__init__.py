"""restorekit.documents: old documents end to end.

* :mod:`~restorekit.documents.text`: page text (Debian word lists, composed Devanagari syllables);
* :mod:`~restorekit.documents.pages`: the page generator (``restorekit data pages``);
* :mod:`~restorekit.documents.ocr`: Tesseract OCR, character/word error rates (``restorekit eval --ocr``);
* :mod:`~restorekit.documents.demo`: the document demo (``restorekit demo --task document``).
"""
