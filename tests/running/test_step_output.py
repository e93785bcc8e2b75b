"""Splitting a step's output into capped lines, and masking its secrets, whatever the chunk boundaries."""
from mlpipe_jupyter.running.step_output import LineSplitter, SecretMask


def split(chunks, max_line=10):
    splitter = LineSplitter(max_line)
    lines = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.flush()


def test_lines_come_whole_whatever_the_chunks():
    assert split([b"ab", b"c\nde", b"f\n\ng"]) == ["abc", "def", "", "g"]
    assert split([b"a\r\n", b"\xff\n"]) == ["a", "\ufffd"]


def test_a_long_line_is_cut_with_a_note_of_what_is_left_out():
    lines = split([b"x" * 7, b"y" * 7, b"z" * 6 + b"\nok\n"])
    assert lines[0].startswith("xxxxxxxyyy") and "10 more bytes" in lines[0]
    assert lines[1] == "ok"


def test_secrets_are_masked_across_chunk_boundaries():
    for cut in range(1, 20):
        data = b"token=s3cr3t-value and again s3cr3t-value."
        mask = SecretMask(["s3cr3t-value", "ab"])  # two letters are too short to be a secret worth masking
        out = b"".join(mask.feed(data[i:i + cut]) for i in range(0, len(data), cut)) + mask.flush()
        assert out == b"token=*** and again ***.", cut


def test_no_secrets_means_no_change():
    mask = SecretMask([])
    assert not mask and mask.feed(b"abc") == b"abc" and mask.flush() == b""
