"""A tiny random Stable Diffusion pipeline on disk (a few MB), for tests and the benchmark's CPU path.

The configs are FIELD-NOTES' "Stable Diffusion" ones (the sizes the canonical diffusers LoRA script
was run with offline); the CLIP tokenizer is built from the BPE vocabulary open_clip ships, so
nothing is downloaded. The folder is a `save_pretrained` pipeline: `wdb sd train --base FOLDER`
loads it exactly as it would load a Hugging Face id.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path


def clip_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """vocab.json and merges.txt of the CLIP BPE tokenizer, from open_clip's bundled vocabulary."""
    import open_clip.tokenizer as t

    lines = gzip.open(t.default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in lines]
    vocab = list(t.bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder / "vocab.json", folder / "merges.txt"


def build_tiny_pipeline(folder: str | Path, seed: int = 0, sample_size: int = 16) -> Path:
    """Save a random tiny StableDiffusionPipeline (UNet, VAE, CLIP text encoder, DDIM) into folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        sample_size=sample_size * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=49408,
        max_position_embeddings=77))
    vocab, merges = clip_tokenizer_files(folder / "_bpe")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    for f in (vocab, merges):
        f.unlink()
    (folder / "_bpe").rmdir()
    return folder
