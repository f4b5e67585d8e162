"""Imported by every bench script before TensorFlow: its start-up chatter stays off the figures.

``GANSR_TF_LOGS=1`` keeps the messages, as at gansr's other entry points.
"""

from gansr.quiet import quiet_tensorflow

quiet_tensorflow()
