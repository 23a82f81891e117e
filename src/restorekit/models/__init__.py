"""Model zoo: architectures registered by name, model packages and checkpoint loading.

Importing this package registers every built-in architecture.
"""

from restorekit.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

# Built-in architectures register themselves on import.
from restorekit.models import deblur_unet  # noqa: F401,E402
from restorekit.models import nafnet  # noqa: F401,E402
from restorekit.models import nafnet_cond  # noqa: F401,E402
from restorekit.models import student_unet  # noqa: F401,E402
from restorekit.models import restormer  # noqa: F401,E402
from restorekit.models import vit_restorer  # noqa: F401,E402
from restorekit.models.tlc import disable_tlc, enable_tlc  # noqa: E402

__all__ = [
    "ModelSpec", "create_model", "get_spec", "list_models", "register_model", "enable_tlc", "disable_tlc", "load_model",
]


def load_model(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """See :func:`restorekit.models.loading.load_model`."""
    from restorekit.models.loading import load_model as _load

    return _load(*args, **kwargs)

