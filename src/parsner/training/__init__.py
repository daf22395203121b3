"""Training: job configs, fine-tuning (``train``), masked-LM pre-training, distillation, and the Trainer pieces they
share (batches, callbacks, checkpoints, the model card of every job)."""
