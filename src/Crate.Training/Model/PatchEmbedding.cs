using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// Patchify then embed: <c>b c (h p1) (w p2) -> b (h w) (p1 p2 c)</c> (channel fastest), then
/// LayerNorm(p*p*C) -> Linear(p*p*C, dim) -> LayerNorm(dim). Children are "1", "2", "3" as in the
/// reference, whose "0" is the parameter-free rearrangement done here in <see cref="Patchify"/>.
/// </summary>
public sealed class PatchEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm _patchNorm;
    private readonly Linear _project;
    private readonly LayerNorm _tokenNorm;
    private readonly int _patch;

    /// <summary>Creates the embedding for <paramref name="patch"/>-sized patches of <paramref name="channels"/> channels.</summary>
    public PatchEmbedding(int patch, int channels, int dim) : base(nameof(PatchEmbedding))
    {
        _patch = patch;
        var patchDim = patch * patch * channels;
        _patchNorm = nn.LayerNorm(patchDim, eps: 1e-5);
        _project = nn.Linear(patchDim, dim);
        _tokenNorm = nn.LayerNorm(dim, eps: 1e-5);
        register_module("1", _patchNorm);
        register_module("2", _project);
        register_module("3", _tokenNorm);
    }

    /// <summary>Splits <c>[B, C, H, W]</c> into <c>[B, N, p*p*C]</c> row-major patches, channel index fastest.</summary>
    public static Tensor Patchify(Tensor images, int patch)
    {
        var (b, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3]);
        return images.view(b, c, h / patch, patch, w / patch, patch)
            .permute(0, 2, 4, 3, 5, 1)                                   // b, gh, gw, p1, p2, c
            .reshape(b, (h / patch) * (w / patch), patch * patch * c);
    }

    /// <summary>Run the projection in bfloat16; see <see cref="MixedPrecision"/>.</summary>
    public bool BFloat16 { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor images) =>
        _tokenNorm.forward(MixedPrecision.Linear(_patchNorm.forward(Patchify(images, _patch)), _project.weight!, _project.bias, BFloat16));
}

/// <summary>The classifier head: LayerNorm(dim) -> Linear(dim, classes), children "0" and "1".</summary>
public sealed class ClassifierHead : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm _norm;
    private readonly Linear _linear;

    /// <summary>Creates a head mapping <paramref name="dim"/> features to <paramref name="classes"/> logits.</summary>
    public ClassifierHead(int dim, int classes) : base(nameof(ClassifierHead))
    {
        _norm = nn.LayerNorm(dim, eps: 1e-5);
        _linear = nn.Linear(dim, classes);
        register_module("0", _norm);
        register_module("1", _linear);
    }

    /// <summary>The final linear layer.</summary>
    public Linear Linear => _linear;

    /// <inheritdoc />
    public override Tensor forward(Tensor pooled) => _linear.forward(_norm.forward(pooled));
}
