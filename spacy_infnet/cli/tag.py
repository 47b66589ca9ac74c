"""``tag``: run a trained pipeline over a corpus (text, JSONL, Parquet, a saved Hugging Face
dataset) into a directory of JSONL or DocBin shards, resumably; or on Ray Data (``--ray``).

    python -m spacy_infnet tag runs/pos/model-best tweets.txt tagged/ --n-process 2
    python -m spacy_infnet tag runs/ner/model-best news.jsonl tagged/ --confidence
    python -m spacy_infnet tag runs/ner/model-best news.jsonl tagged_ray/ --ray --n-process 4

See :mod:`spacy_infnet.corpus` (formats, output records, shards, resume, bad records, Ray).
"""

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from ._util import Arg, DecoderOpt, GpuOpt, Opt, check_decoder, user_errors

INPUT_HELP = (
    "corpus: .txt (a document per line), .jsonl (objects with a text or words field), "
    ".parquet (file or directory), or a directory written by datasets' save_to_disk"
)
FORMAT_HELP = "input format: auto (from the suffix or directory), text, jsonl, parquet, hf"
OUTPUT_FORMAT_HELP = "jsonl or docbin (.spacy); with --ray: jsonl or parquet"
ON_ERROR_HELP = (
    "bad records (not UTF-8, invalid JSON, missing or empty field...): skip (list them in the "
    "shards' sidecars) or refuse (stop at the first, naming its file and line)"
)
N_PROCESS_HELP = "processes that tag whole shards; with --ray: tagging actors (one CPU each)"


@user_errors("tag")
def tag_cli(
    pipeline: Annotated[Path, Arg(help="trained pipeline directory", show_default=False)],
    input: Annotated[str, Arg(help=INPUT_HELP, show_default=False)],
    output_dir: Annotated[str, Arg(help="output directory of shards", show_default=False)],
    input_format: Annotated[str, Opt("--format", help=FORMAT_HELP)] = "auto",
    text_field: Annotated[str, Opt(help="field (column) with the text")] = "text",
    words_field: Annotated[
        str, Opt(help="field (column) with pre-tokenised words, read if there is no text")
    ] = "words",
    split: Annotated[
        str | None, Opt(help="split of a saved DatasetDict", show_default=False)
    ] = None,
    output_format: Annotated[str, Opt(help=OUTPUT_FORMAT_HELP)] = "jsonl",
    shard_size: Annotated[int, Opt(help="records per shard")] = 10_000,
    batch_size: Annotated[
        int | None,
        Opt(help="documents per nlp.pipe batch (default: the pipeline's; --ray: 256)"),
    ] = None,
    n_process: Annotated[int, Opt("--n-process", "-n", help=N_PROCESS_HELP)] = 1,
    gpu_id: GpuOpt = -1,
    on_error: Annotated[str, Opt(help=ON_ERROR_HELP)] = "skip",
    confidence: Annotated[
        bool, Opt(help="write the probability of each tag or entity (6 decimals)")
    ] = False,
    decoder: DecoderOpt = None,
    component: Annotated[str, Opt(help="name of the infnet_tagger component")] = "infnet_tagger",
    progress: Annotated[bool, Opt(help="progress bar on stderr (documents/s)")] = True,
    summary: Annotated[
        Path | None, Opt(help="also write the summary as JSON", show_default=False)
    ] = None,
    use_ray: Annotated[bool, Opt("--ray", help="run on Ray Data (pip install ray[data])")] = False,
    ray_address: Annotated[
        str | None,
        Opt(help="Ray cluster to join, e.g. auto (default: a new local one)", show_default=False),
    ] = None,
    ray_cpus: Annotated[
        int | None, Opt(help="CPUs of a new local Ray (default: all)", show_default=False)
    ] = None,
) -> None:
    """Tag a corpus into a directory of shards; a rerun resumes where a run stopped."""
    from ..fileio import atomic_write

    if decoder is not None:
        check_decoder(decoder)
    common = {
        "input_format": input_format,
        "text_field": text_field,
        "words_field": words_field,
        "output_format": output_format,
        "gpu_id": gpu_id,
        "on_error": on_error,
        "confidence": confidence,
        "decoder": decoder,
        "component": component,
        "progress": progress,
    }
    if use_ray:
        try:
            importlib.import_module("ray.data")
        except ImportError as err:  # not a user error type: report it as one
            raise ValueError(f"--ray needs Ray Data: pip install 'ray[data]' ({err})") from None
        from ..corpus.ray_data import tag_corpus_ray

        result = tag_corpus_ray(
            pipeline,
            input,
            output_dir,
            concurrency=n_process,
            batch_size=batch_size or 256,
            address=ray_address,
            num_cpus=ray_cpus,
            **common,
        )
    else:
        from ..corpus import tag_corpus

        if ray_address is not None or ray_cpus is not None:
            raise ValueError("--ray-address and --ray-cpus need --ray")
        result = tag_corpus(
            pipeline,
            input,
            output_dir,
            split=split,
            shard_size=shard_size,
            batch_size=batch_size,
            n_process=n_process,
            **common,
        )
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(summary, json.dumps(result.to_dict(), indent=2).encode("utf8"))
    typer.echo(result.line())
