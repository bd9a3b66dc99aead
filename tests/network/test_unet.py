import pytest
import torch

from glioseg.core.config import ModelConfig
from glioseg.core.errors import InputError
from glioseg.network.unet import UNet3D, build_network, divisor

CONFIGS = [
    ModelConfig(width=4, depth=2),
    ModelConfig(width=4, depth=3, head="classes"),
    ModelConfig(width=4, depth=4, deep_supervision=True),
    ModelConfig(width=6, depth=3, max_width=8),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"w{c.width}d{c.depth}{c.head}{int(c.deep_supervision)}")
def test_forward_backward_contract(config):
    torch.manual_seed(0)
    model = UNet3D(config)
    size = 2 * model.divisor
    x = torch.randn(2, 4, size, size + model.divisor, size)
    model.train()
    outputs = model(x)
    if config.deep_supervision:
        assert isinstance(outputs, list) and len(outputs) == config.depth - 1
        for level, logits in enumerate(outputs):
            assert logits.shape == (2, config.out_channels, *(n // 2**level for n in x.shape[2:]))
        loss = sum(o.mean() for o in outputs)
    else:
        assert outputs.shape == (2, config.out_channels, *x.shape[2:])
        loss = outputs.mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, config.out_channels, *x.shape[2:])  # one output in eval mode


def test_widths_double_per_level_up_to_the_cap():
    model = UNet3D(ModelConfig(width=8, depth=4, max_width=32))
    widths = [encoder[0].out_channels for encoder in model.encoders]
    assert widths == [8, 16, 32, 32]


def test_each_decoder_level_receives_its_encoder_output_as_skip():
    """The U-Net's skips: each decoder's input is the upsampled deeper features next to the encoder output of its
    own level, and that skip half matters. (Zeroing an encoder's output would change every deeper level too, so a
    network without skips would pass that; here the skip alone is replaced.)"""
    torch.manual_seed(0)
    model = UNet3D(ModelConfig(width=4, depth=3)).eval()
    x = torch.randn(1, 4, 16, 16, 16)
    encoded, decoder_inputs = {}, {}
    for level, encoder in enumerate(model.encoders):
        encoder.register_forward_hook(lambda m, i, o, level=level: encoded.__setitem__(level, o))
    for index, decoder in enumerate(model.decoders):  # decoders run from the deepest level up
        decoder.register_forward_pre_hook(lambda m, i, index=index: decoder_inputs.__setitem__(index, i[0]))
    with torch.no_grad():
        reference = model(x)
    for index, inputs in decoder_inputs.items():
        level = len(model.decoders) - 1 - index
        width = encoded[level].shape[1]
        assert inputs.shape[1] == 2 * width
        assert torch.equal(inputs[:, width:], encoded[level])  # the skip half is that level's encoder output

    def drop_skip(module, inputs):
        features = inputs[0].clone()
        features[:, features.shape[1] // 2 :] = 0
        return (features,)

    model.decoders[-1].register_forward_pre_hook(drop_skip)  # the full-resolution skip only
    with torch.no_grad():
        assert not torch.allclose(model(x), reference, atol=1e-4)


def test_the_builder_loads_weights_that_fit_and_names_the_file_of_those_that_do_not(tmp_path):
    trained = build_network(ModelConfig(width=4, depth=3))
    copy = build_network(ModelConfig(width=4, depth=3), trained.state_dict(), tmp_path / "a.pt")
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), trained.state_dict().values()))
    with pytest.raises(InputError, match="do not fit") as refused:
        build_network(ModelConfig(width=8, depth=3), trained.state_dict(), tmp_path / "a.pt")
    assert refused.value.path == tmp_path / "a.pt"
    assert divisor(ModelConfig(depth=3)) == build_network(ModelConfig(depth=3)).divisor == 4
