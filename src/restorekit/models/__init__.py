"""Model zoo: architectures registered by name, model packages and checkpoint loading.

Importing this package registers every built-in architecture.
"""

from restorekit.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

# Built-in architectures register themselves on import.
from restorekit.models import deblur_unet  # noqa: F401,E402

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model"]
