"""ONNX operators that ONNX itself defines as functions, imported through that definition.

Many ONNX operators (``Elu``, ``Selu``, ``Mish``, ``HardSwish``, ``Shrink``, ``PRelu``,
``Gelu``, ``LayerNormalization`` on any axis, ``RMSNormalization``, ...) come with a
*function body* in their schema: the same computation written with simpler operators,
for the opset the model imports. When the importer has no rule of its own for such an op
(or its rule refuses the form), :func:`expand` gives that body as plain nodes — the
caller's inputs, outputs and attributes substituted, every inner tensor under a prefix of
the calling node's name — and the importer imports those nodes one by one. A body that
depends on its inputs' types (a *context-dependent* function) is asked for with the
types the importer knows.

Examples
--------
>>> from onnx import helper
>>> node = helper.make_node("Elu", ["x"], ["y"], alpha=0.5)
>>> body, _ = expand(node, [helper.make_opsetid("", 22)], [float_type(["T", "B", 4])])
>>> [n.op_type for n in body][:3]
['Constant', 'CastLike', 'Constant']
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx
from onnx import AttributeProto, FunctionProto, NodeProto, OperatorSetIdProto, TypeProto, helper

__all__ = ["expand", "float_type", "has_function"]


def float_type(dims: Sequence[int | str], elem: int = onnx.TensorProto.FLOAT) -> TypeProto:
    """A tensor type (element type ``elem``, ``dims`` numbers or symbolic names)."""
    return helper.make_tensor_type_proto(elem, list(dims))


def _version(node: NodeProto, opsets: Sequence[OperatorSetIdProto]) -> int | None:
    domain = node.domain or ""
    for o in opsets:
        if (o.domain or "") == domain or (domain == "ai.onnx" and not o.domain):
            return int(o.version)
    return None


def _schema(node: NodeProto, opsets: Sequence[OperatorSetIdProto]) -> onnx.defs.OpSchema | None:
    """The op's schema at the opset in force; when that version has no function body
    but a later one does and has the same inputs and attributes (a version that only
    added types, as ``Elu`` 6 to 22), the later one."""
    version = _version(node, opsets)
    domain = node.domain or ""
    try:
        latest = onnx.defs.get_schema(node.op_type, domain=domain)
        if version is None:
            return latest
        found = onnx.defs.get_schema(node.op_type, version, domain=domain)
    except onnx.defs.SchemaError:
        return None
    if _defined(found) or not _defined(latest):
        return found
    inputs = [i.name for i in found.inputs], [i.name for i in latest.inputs]
    same = set(found.attributes) == set(latest.attributes) and inputs[0] == inputs[1]
    return latest if same else found


def _defined(s: onnx.defs.OpSchema) -> bool:
    return bool(s.has_function or s.has_context_dependent_function)  # type: ignore[attr-defined]


def has_function(node: NodeProto, opsets: Sequence[OperatorSetIdProto]) -> bool:
    """True when ONNX defines ``node``'s op, at the model's opset, as a function."""
    s = _schema(node, opsets)
    return bool(s and _defined(s))


def _body(
    schema: onnx.defs.OpSchema, node: NodeProto, version: int, types: Sequence[TypeProto]
) -> FunctionProto | None:
    """The function body written for the newest opset not newer than ``version`` (else
    the oldest one: a body carries its own opset imports, so any of them is the op)."""
    bodies = [(v, False) for v in schema.function_opset_versions]  # type: ignore[attr-defined]
    bodies += [(v, True) for v in schema.context_dependent_function_opset_versions]  # type: ignore[attr-defined]
    if not bodies:
        return None
    older = [b for b in bodies if b[0] <= version]
    at, in_context = max(older) if older else min(bodies)
    if in_context:
        raw = schema.get_context_dependent_function_with_opset_version(  # type: ignore[attr-defined]
            at, node.SerializeToString(), [t.SerializeToString() for t in types]
        )
    else:
        raw = schema.get_function_with_opset_version(at)  # type: ignore[attr-defined]
    if not raw:
        return None
    fn = FunctionProto()
    fn.ParseFromString(raw)
    return fn


def expand(
    node: NodeProto, opsets: Sequence[OperatorSetIdProto], types: Sequence[TypeProto]
) -> tuple[list[NodeProto], list[OperatorSetIdProto]] | None:
    """``node`` as the nodes of ONNX's function body for its op (and that body's opset
    imports), or None when ONNX defines no function for it at the model's opset.

    ``types`` are the types of ``node``'s inputs (used by context-dependent bodies)."""
    schema = _schema(node, opsets)
    if schema is None:
        return None
    version = max(_version(node, opsets) or 0, schema.since_version)
    # The caller's attributes, with the schema's defaults for those it leaves out.
    attrs = {a.name: a for a in node.attribute}
    for name, spec in schema.attributes.items():
        default = spec.default_value
        if name not in attrs and default.type != AttributeProto.UNDEFINED:
            filled = AttributeProto()
            filled.CopyFrom(default)
            filled.name = name
            attrs[name] = filled
    called = NodeProto()
    called.CopyFrom(node)
    del called.attribute[:]
    called.attribute.extend(attrs.values())
    fn = _body(schema, called, version, types)
    if fn is None:
        return None
    prefix = f"{node.name or node.output[0]}/{node.op_type}/"
    names = {
        formal: node.input[i] if i < len(node.input) else "" for i, formal in enumerate(fn.input)
    }
    names |= {
        formal: node.output[i]
        for i, formal in enumerate(fn.output)
        if i < len(node.output) and node.output[i]
    }

    def rename(name: str) -> str:
        if not name:
            return ""
        return names.get(name, prefix + name)

    out = []
    for i, inner in enumerate(fn.node):
        n = NodeProto()
        n.CopyFrom(inner)
        n.name = f"{prefix}{inner.name or i}"
        n.input[:] = [rename(x) for x in inner.input]
        n.output[:] = [rename(x) for x in inner.output]
        del n.attribute[:]
        for a in inner.attribute:
            if a.ref_attr_name:  # an attribute of the function: the caller's value
                given = attrs.get(a.ref_attr_name)
                if given is None:
                    continue
                passed = AttributeProto()
                passed.CopyFrom(given)
                passed.name = a.name
                a = passed
            n.attribute.append(a)
        out.append(n)
    return out, list(fn.opset_import) or list(opsets)
