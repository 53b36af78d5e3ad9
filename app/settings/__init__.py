"""Process settings (environment) and the model catalogue (YAML)."""

from app.settings.catalogue import GatewayConfig, ModelConfig, load_config
from app.settings.settings import Settings

__all__ = ["GatewayConfig", "ModelConfig", "Settings", "load_config"]
