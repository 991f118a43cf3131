namespace ConsumeWithoutCrate;

/// <summary>One image to classify, by file (PNG, JPEG, ...).</summary>
public class ModelInput
{
    public string ImagePath { get; set; } = "";
}
