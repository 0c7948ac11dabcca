"""What the recipes in ``recipes/`` share, kept apart from the library.

Nothing here is needed to use the layers or models, and ``import upsampler`` does not
import this package (it pulls in Hydra through :mod:`.build`). Modules:

- :mod:`.errors`: ``RecipeError``, ``one_line``, ``run_or_exit`` (one log line, exit 1);
- :mod:`.lock`: one run at a time per output folder;
- :mod:`.options`: checks of command-line options (booleans, integers, thread counts);
- :mod:`.records`: inputs, output names, sharding, per-file records, resume;
- :mod:`.distributed`: the ``torchrun`` process group, or a single process;
- :mod:`.build`: the one generator builder of all recipes and the settings fingerprint.
"""
