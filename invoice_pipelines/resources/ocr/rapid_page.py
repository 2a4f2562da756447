"""One page through RapidOCR, in a process of its own: `resources/ocr/rapid.py` starts it for each
page and holds it to the page's budget of CPU, as it holds tesseract (`readers.run_within`).

stdin: the page's image (PNG, JPEG, TIFF ...). stdout: one JSON object, `{"lines": [...]}`, the
engine's text lines in its reading order, each a list of its words as `[text, confidence, left,
top, right, bottom]` (pixels of the image as given). Exit code 3 with a sentence on stderr: the
bytes are no image the engine can decode. Nothing of the project is imported here, so a page
costs the engine's own start (about half a second) and its reading.

The engine's settings: no angle classifier (it read a page partly upside down and took 14 s of
CPU on one; docs/intake.md, "RapidOCR"), one thread (pages run side by side, one per core), and
onnxruntime's memory arena on (without it a page spent a second in the kernel on allocations).
"""

from __future__ import annotations

import json
import sys
from typing import Any

NOT_AN_IMAGE = 3

SETTINGS = {
    "Global.use_cls": False,
    "Global.log_level": "critical",
    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
}


def _edges(box: Any) -> list[int]:
    xs = [float(point[0]) for point in box]
    ys = [float(point[1]) for point in box]
    return [round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))]


def page_lines(result: Any) -> list[list[list[Any]]]:
    """The words of each text line the engine read, with their boxes; a line whose words the
    engine gave no boxes for is one word over the line's own box."""
    lines: list[list[list[Any]]] = []
    boxes = result.boxes if result.boxes is not None else []
    texts = result.txts or ()
    scores = result.scores or ()
    words_by_line = result.word_results or ()
    for index, (box, text, score) in enumerate(zip(boxes, texts, scores, strict=False)):
        words = words_by_line[index] if index < len(words_by_line) else ()
        if words and isinstance(words[0], str):
            words = (words,)  # a line of one word comes unwrapped
        placed = [
            [str(word[0]), float(word[1]), *_edges(word[2])]
            for word in words
            if isinstance(word, tuple | list) and len(word) == 3 and word[2] is not None
        ]
        if not placed or "".join(w[0] for w in placed).replace(" ", "") != text.replace(" ", ""):
            placed = [[str(text), float(score), *_edges(box)]]
        lines.append(placed)
    return lines


def main() -> int:
    data = sys.stdin.buffer.read()
    from rapidocr import RapidOCR

    engine = RapidOCR(params=SETTINGS)
    try:
        result = engine(data, return_word_box=True)
    except OSError as exc:  # PIL's UnidentifiedImageError and decoding errors
        print(f"the data is no image RapidOCR can decode ({exc})", file=sys.stderr)
        return NOT_AN_IMAGE
    json.dump({"lines": page_lines(result)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
