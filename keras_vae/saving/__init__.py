"""Files: what keras_vae writes and how it writes them.

- `formats`: the format version every file records, and the check on reading;
- `atomic`: a file or directory written under a temporary name, then renamed;
- `keras_file`: `.keras` files, saved atomically and loaded with a clear error;
- `export`: an export in one of three formats, checked, then put in place:
  - `signatures`: the random-free signatures every format holds;
  - `saved_model`, `litert_file`, `onnx_files`: each format's writer and runtime;
  - `self_check`: each export run in its runtime against the Keras model;
  - `extras`: the optional packages a format needs, named when missing.

Nothing is imported here: `keras_vae.model` reads `formats` and exports
through `export`, and `keras_file` loads a `VAE`, so importing one module
must not import the others.
"""
