namespace ConsumeWithoutCrate;

/// <summary>What a Crate model says about one image.</summary>
public class ModelOutput
{
    /// <summary>The most probable class's name.</summary>
    public string PredictedLabel { get; set; } = "";

    /// <summary>Every class's probability, in class order.</summary>
    public float[] Score { get; set; } = [];
}
