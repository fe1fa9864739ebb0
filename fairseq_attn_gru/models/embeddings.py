"""Token embeddings, optionally initialised from a pretrained text file (word2vec/GloVe text format)."""
import logging
import os

import torch
import torch.nn as nn

from ..errors import UserError

logger = logging.getLogger(__name__)


def Embedding(num_embeddings: int, embedding_dim: int, padding_idx: int) -> nn.Embedding:
    embedding = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
    nn.init.uniform_(embedding.weight, -0.1, 0.1)
    nn.init.constant_(embedding.weight[padding_idx], 0)
    return embedding


def read_embedding_file(path: str, embed_dim: int, flag: str) -> dict:
    """``{word: tensor(embed_dim)}`` from lines ``word v1 ... vD``; an optional ``count dim`` header is skipped."""
    if not os.path.isfile(path):
        raise UserError(f"{flag}={path!r}: no such file")
    vectors = {}
    with open(path, encoding="utf-8", errors="strict") as embed_file:
        try:
            for line_number, line in enumerate(embed_file, start=1):
                pieces = line.rstrip().split(" ")
                if line_number == 1 and len(pieces) == 2 and all(p.isdigit() for p in pieces):
                    continue  # word2vec header: "<count> <dim>"
                if pieces == [""]:
                    continue
                if len(pieces) - 1 != embed_dim:
                    raise UserError(
                        f"{flag}={path!r} line {line_number}: a vector of {len(pieces) - 1} numbers, "
                        f"but the model's embedding dimension is {embed_dim}"
                    )
                try:
                    vectors[pieces[0]] = torch.tensor([float(p) for p in pieces[1:]])
                except ValueError:
                    raise UserError(
                        f"{flag}={path!r} line {line_number}: expected 'word' followed by {embed_dim} numbers"
                    ) from None
        except UnicodeDecodeError as err:
            raise UserError(f"{flag}={path!r}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return vectors


def build_embedding(dictionary, embed_dim: int, path=None, flag: str = "--embed-path") -> nn.Embedding:
    """A fresh embedding for ``dictionary``; rows for words found in ``path`` are copied from it."""
    embedding = Embedding(len(dictionary), embed_dim, dictionary.pad())
    if path:
        vectors = read_embedding_file(path, embed_dim, flag)
        found = 0
        with torch.no_grad():
            for index in range(len(dictionary)):
                vector = vectors.get(dictionary[index])
                if vector is not None:
                    embedding.weight[index] = vector
                    found += 1
        logger.info(f"{flag}: {found} of {len(dictionary)} dictionary words found in {path}")
    return embedding
