"""The ct_pipelines code location: one lazy entry point that loads every flow under defs/."""

import warnings
from pathlib import Path

import dagster as dg


def code_references(defs: dg.Definitions) -> dg.Definitions:
    """Every asset with a link to the file and line that defines it ("Open in editor" in the UI).

    Assets computed by a function point at the function; the external systems (plain asset specs
    in defs/systems.py) carry their own reference. Without a public remote to link to, the
    references stay local files (``dg.link_code_references_to_git`` needs the repository's URL).
    """
    metadata: dict[dg.AssetKey, dict[str, object]] = {}
    with warnings.catch_warnings():
        # Both APIs are marked beta/preview in 1.13; the warnings would greet every load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        for assets_def in dg.with_source_code_references(list(defs.assets or [])):
            if isinstance(assets_def, dg.AssetsDefinition):
                for key in assets_def.keys:
                    metadata[key] = dict(assets_def.metadata_by_key.get(key, {}))
        return defs.map_resolved_asset_specs(
            func=lambda spec: spec.merge_attributes(metadata=metadata.get(spec.key, {}))
        )


@dg.definitions
def defs() -> dg.Definitions:
    return code_references(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
