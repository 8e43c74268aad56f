"""Files: what keras_vae writes and how it writes them.

- `formats`: the format version every file records, and the check on reading;
- `atomic`: a file or directory written under a temporary name, then renamed;
- `keras_file`: `.keras` files, saved atomically and loaded with a clear error;
- `saved_model`: the SavedModel export and its signatures.

Nothing is imported here: `keras_vae.model` reads `formats` and writes
through `saved_model`, and `keras_file` loads a `VAE`, so importing one module
must not import the others.
"""
