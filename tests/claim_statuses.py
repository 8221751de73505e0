"""Every registered cost claim whose verdict is not a plain ``match``, with its status: the judgments this
repository stands behind (tests/test_paper_claims.py checks the whole registry against it; the per-paper tests
check their own rows). A change of any verdict fails a test and has to be written here, with its reason.

Reasons, in short (each row's diagnosis in results/papers/ gives the numbers):

* ``match, convention ... (fitted)``: reproduced only under a convention we fitted to that paper's tables
  (``no-attention``: ATM's ViT rows; ``ila-paper`` / ``ila-paper-k400``: ILA's rows; ``no-bmm``: TAM's NL C2D).
* ATM ViT-B/16 8f / 16f: below the paper under the convention that reproduces the 32f and ViT-L rows.
* ATM R152, ILA's X-CLIP / ATA / ILA-B/32 / average-pooling rows: outside the printed digits by more than
  the counting slack (0.6%), which the old per-file tolerances (3%, 5%) hid.
* ATM Table 4 TANet: counted at 224, the size ATM's caption states; 43 is TAM's figure at 256.
* EMIM Table 3 TimeSformer-L: 7140 = 3 x 2380, the total over the 3 views.
* The Hugging Face family (``transformers/*``, measured only with tembench[hf] installed): the same verdicts as
  tembench's own X-CLIP and TimeSformer for the same rows (X-CLIP-B/32 and B/16 8f outside the printed digits;
  TimeSformer-L in EMIM Table 3 the total over 3 views).
* ILA Divided ST / ATA / Joint / window attention / addition / concatenation, L/14 SSv2 rows, TAM's TEINet params:
  no hypothesis of the judge's list reproduces them.
"""

EXPECTED = {
    ('atm/atm-vit-b16', 'ATM Table 3', 'ViT-B/16 32x3x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table 3', 'ViT-L/14 16x3x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table 3', 'ViT-L/14 16x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-merged2b', 'ATM Table 3', 'ViT-L/14 Merged-2B 16x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('tam/tanet-r50', 'ATM Table 4', 'TANet R50 8x3x10', 'gflops'): 'mismatch',
    ('atm/atm-r152', 'ATM Table 4', 'R152 16x3x10', 'gflops'): 'mismatch',
    ('atm/atm-vit-l14', 'ATM Table 4', 'ViT-L/14 8x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table 4', 'ViT-L/14 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-336', 'ATM Table 4', 'ViT-L/14 (336) 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-336-merged2b', 'ATM Table 4', 'ViT-L/14 (336) Merged-2B 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 8x1x1', 'gflops'): 'mismatch',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 8x3x2', 'gflops'): 'mismatch',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 16x1x1', 'gflops'): 'mismatch',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 16x3x2', 'gflops'): 'mismatch',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 32x1x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-b16', 'ATM Table A.6', 'ViT-B/16 32x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.6', 'ViT-L/14 8x1x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.6', 'ViT-L/14 8x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.6', 'ViT-L/14 16x1x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.6', 'ViT-L/14 16x3x1', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.6', 'ViT-L/14 16x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-merged2b', 'ATM Table A.6', 'ViT-L/14 Merged-2B 8x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-merged2b', 'ATM Table A.6', 'ViT-L/14 Merged-2B 16x3x2', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-r152', 'ATM Table A.7', 'R152 16x3x10', 'gflops'): 'mismatch',
    ('atm/atm-vit-b16', 'ATM Table A.7', 'ViT-B/16 8x3x4', 'gflops'): 'mismatch',
    ('atm/atm-vit-l14', 'ATM Table A.7', 'ViT-L/14 8x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14', 'ATM Table A.7', 'ViT-L/14 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-336', 'ATM Table A.7', 'ViT-L/14 (336) 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-merged2b', 'ATM Table A.7', 'ViT-L/14 Merged-2B 8x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-336-merged2b', 'ATM Table A.7', 'ViT-L/14 (336) Merged-2B 8x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('atm/atm-vit-l14-336-merged2b', 'ATM Table A.7', 'ViT-L/14 (336) Merged-2B 32x3x4', 'gflops'): 'match, convention no-attention (fitted)',
    ('ila/timesformer-vit-b16', 'EMIM Table 3', 'TimeSformer-L', 'gflops'): 'mismatch, explained',
    ('ila/ata-vit-b16', 'ILA Table 1', 'ATA', 'gflops'): 'mismatch',
    ('ila/ila-vit-b32', 'ILA Table 1', 'ILA-ViT-B/32 8f', 'gflops'): 'mismatch',
    ('ila/ila-vit-b32', 'ILA Table 1', 'ILA-ViT-B/32 16f', 'gflops'): 'mismatch',
    ('ila/ila-vit-b16', 'ILA Table 1', 'ILA-ViT-B/16 8f', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-vit-b16', 'ILA Table 1', 'ILA-ViT-B/16 16f', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-vit-l14', 'ILA Table 1', 'ILA-ViT-L/14 8f', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-vit-l14-336', 'ILA Table 1', 'ILA-ViT-L/14@336px 16f', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/joint-vit-b32', 'ILA Table 15', 'Joint Attention', 'gflops'): 'mismatch',
    ('ila/divided-vit-b32', 'ILA Table 15', 'Divided ST Attention', 'gflops'): 'mismatch',
    ('ila/ata-vit-b32', 'ILA Table 15', 'ATA', 'gflops'): 'mismatch',
    ('ila/xclip-vit-b32', 'ILA Table 15', 'X-CLIP', 'gflops'): 'mismatch',
    ('ila/ila-vit-b32', 'ILA Table 15', 'ILA', 'gflops'): 'mismatch',
    ('ila/ata-vit-b16', 'ILA Table 2', 'ATA', 'gflops'): 'mismatch',
    ('ila/xclip-vit-b16', 'ILA Table 2', 'X-CLIP-B/16', 'gflops'): 'mismatch',
    ('ila/ila-ssv2-vit-b16', 'ILA Table 2', 'ILA-ViT-B/16 8f', 'gflops'): 'match, convention ila-paper (fitted)',
    ('ila/ila-ssv2-vit-b16', 'ILA Table 2', 'ILA-ViT-B/16 16f', 'gflops'): 'match, convention ila-paper (fitted)',
    ('ila/ila-ssv2-vit-l14', 'ILA Table 2', 'ILA-ViT-L/14 8f', 'gflops'): 'mismatch',
    ('ila/ila-ssv2-vit-l14-336', 'ILA Table 2', 'ILA-ViT-L/14@336px 16f', 'gflops'): 'mismatch',
    ('ila/timesformer-ila-vit-b16', 'ILA Table 3', 'TimeSformer + ILA', 'gflops'): 'match, convention ila-paper (fitted)',
    ('ila/xclip-vit-b32', 'ILA Table 4', 'X-CLIP', 'gflops'): 'mismatch',
    ('ila/divided-vit-b32', 'ILA Table 4', 'CLIP + Divided ST Attention', 'gflops'): 'mismatch',
    ('ila/ata-vit-b32', 'ILA Table 4', 'CLIP + ATA', 'gflops'): 'mismatch',
    ('ila/avgpool-vit-b32', 'ILA Table 4', 'CLIP + Average Pooling', 'gflops'): 'mismatch',
    ('ila/ila-vit-b32', 'ILA Table 4', 'CLIP + ILA', 'gflops'): 'mismatch',
    ('ila/ila-blocks1-3-vit-b32', 'ILA Table 7', 'Block 1-3', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-blocks4-6-vit-b32', 'ILA Table 7', 'Block 4-6', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-blocks7-9-vit-b32', 'ILA Table 7', 'Block 7-9', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-blocks10-12-vit-b32', 'ILA Table 7', 'Block 10-12', 'gflops'): 'match, convention ila-paper-k400 (fitted)',
    ('ila/ila-vit-b32', 'ILA Table 7', 'ILA (Block 1-12)', 'gflops'): 'mismatch',
    ('ila/ila-vit-b32', 'ILA Table 8', '2D Convolution', 'gflops'): 'mismatch',
    ('ila/ila-window-vit-b32', 'ILA Table 8', 'Window Attention', 'gflops'): 'mismatch',
    ('ila/ila-add-vit-b32', 'ILA Table 9', 'Element-wise Addition', 'gflops'): 'mismatch',
    ('ila/ila-concat-vit-b32', 'ILA Table 9', 'Direct Concat.', 'gflops'): 'mismatch',
    ('ila/ila-token-vit-b32', 'ILA Table 9', 'Pooling & Concat. (ILA)', 'gflops'): 'mismatch',
    ('tam/teinet-r50', 'TAM Table 2', 'TEINet*', 'params'): 'mismatch',
    ('tam/nl-c2d-r50', 'TAM Table 2', 'NL C2D', 'gflops'): 'match, convention no-bmm (fitted)',
    ('transformers/xclip-b32', 'ILA Table 4', 'X-CLIP', 'gflops'): 'mismatch',
    ('transformers/xclip-b32', 'ILA Table 15', 'X-CLIP', 'gflops'): 'mismatch',
    ('transformers/xclip-b16', 'ILA Table 2', 'X-CLIP-B/16', 'gflops'): 'mismatch',
    ('transformers/timesformer-l', 'EMIM Table 3', 'TimeSformer-L', 'gflops'): 'mismatch, explained',
}
