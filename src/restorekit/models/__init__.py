"""Model zoo: architectures registered by name with their specs, model packages and checkpoint loading.

Importing this package registers every built-in architecture. Adding an
architecture means adding one file here that defines the ``nn.Module`` and calls
:func:`register_model` with its detection, argument inference and capabilities
(see :mod:`restorekit.models.spec`), and importing it below.
"""

from restorekit.models.registry import MODELS, create_model, get_spec, list_models, register_model
from restorekit.models.spec import ArchSpec, Capabilities, ModelCard, card_of, set_card

# Built-in architectures register themselves on import.
from restorekit.models import deblur_unet  # noqa: F401,E402
from restorekit.models import nafnet  # noqa: F401,E402
from restorekit.models import nafnet_cond  # noqa: F401,E402
from restorekit.models import student_unet  # noqa: F401,E402
from restorekit.models import restormer  # noqa: F401,E402
from restorekit.models import vit_restorer  # noqa: F401,E402
from restorekit.models.loading import load_model  # noqa: E402
from restorekit.models.tlc import disable_tlc, enable_tlc  # noqa: E402

__all__ = [
    "MODELS", "ArchSpec", "Capabilities", "ModelCard", "card_of", "set_card", "create_model", "get_spec",
    "list_models", "register_model", "enable_tlc", "disable_tlc", "load_model",
]
