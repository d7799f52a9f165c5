"""Pairing of a reshape's input and output dims, shared by the ONNX exporter and the jit
replay (both make baked reshape targets follow sizes that differ from the trace)."""
from __future__ import annotations


def reshape_blocks(ins, outs) -> list:
    """Pair runs of input dims with runs of output dims of equal product, left to right
    (the way a reshape merges and splits dims): [([input dims], [output dims]), ...]."""
    blocks = []
    i = j = 0
    while i < len(ins) or j < len(outs):
        bi, bj = [], []
        pi = pj = 1
        while True:
            if (not bi or pi < pj) and i < len(ins):
                pi *= ins[i]
                bi.append(i)
                i += 1
            elif (not bj or pj < pi) and j < len(outs):
                pj *= outs[j]
                bj.append(j)
                j += 1
            else:
                break
            if pi == pj and bi and bj:
                break
        blocks.append((bi, bj))
    return blocks
