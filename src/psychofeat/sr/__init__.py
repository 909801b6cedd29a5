"""x4 super-resolution: SRResNet, MATLAB-exact bicubic degradation, stateless patch sampling, training, evaluation.

Submodules (import what you need; `psychofeat.sr` itself stays light):

* `resize`: MATLAB `imresize` bicubic (reproduces the benchmark LR files exactly), modcrop, bicubic baseline.
* `model`: SRResNet (Ledig et al. 2017).
* `data`: training pairs from sr_train with stateless random patches; Set5/Set14/BSD100 loader.
* `checkpoint`: the checkpoint format (atomic, weights-only loadable).
* `train`: the training loop (L1 or perceptual loss, AMP, resume, torchrun/DDP).
* `evaluate`: PSNR/SSIM on Y with a 4 px shave, bicubic baseline, report; `upscale_file`.

See docs/sr.md for the conventions.
"""
